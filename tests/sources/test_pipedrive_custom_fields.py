"""Pipedrive custom fields end to end: the sandbox's hash-keyed custom fields of every kind (text, number,
date, enum, multi-select, currency, user reference) -> definitions read from /v1/<entity>Fields (opt-in
object `custom_fields`) -> canonical `custom_fields` {field_name: {value, type, remote_key}}; a rename at
Pipedrive keeps the canonical key."""

from __future__ import annotations

import json

import requests

from canonry.pipeline import sync
from canonry.sandbox import DEFAULT_TOKENS
from canonry.transform import build
from expectations.gate import run_gate
from tests.helpers import canonical, lineage, mutate, query, request_log, truth

AUTH = {"x-api-token": DEFAULT_TOKENS["pipedrive"]}
OBJECTS = ["persons", "organizations", "deals", "users", "stages", "pipelines", "custom_fields"]
CANONICAL_TYPE = {"varchar": "text", "double": "number", "date": "date", "enum": "enum", "set": "multi_select",
                  "monetary": "currency", "user": "user_reference"}
# canonical table, sandbox object, fields endpoint
ENTITIES = [("crm_contacts", "persons", "personFields"), ("crm_accounts", "organizations", "organizationFields"),
            ("crm_opportunities", "deals", "dealFields")]


def _snake(name: str) -> str:
    return "_".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def _expected_value(definition: dict, value, connection_id: str):
    """The canonical value of a stored (v2-shaped) Pipedrive value."""
    labels = {o["id"]: o["label"] for o in definition.get("options", [])}
    kind = definition["field_type"]
    if kind == "enum":
        return labels[value]
    if kind == "set":
        return [labels[v] for v in value]
    if kind == "monetary":
        return {"amount": value["value"], "currency": value["currency"]}
    if kind == "user":
        return query("select md5(?) as id", [f"{connection_id}:{value}"])[0]["id"]
    return value


def _definitions(server, segment: str) -> list[dict]:
    answer = requests.get(f"{server.base_url}/v1/{segment}", headers=AUTH, params={"limit": 500}, timeout=10)
    return [f for f in answer.json()["data"] if f["edit_flag"]]


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else json.loads(value)


def _assert_named_custom_fields(server, connection_id: str, first_names: dict[str, str]) -> None:
    """Canonical custom_fields equal the truth's stored values, named by `first_names` (key -> the name
    Canonry first loaded) or else the field's current name."""
    for table, name, segment in ENTITIES:
        definitions = {d["key"]: d for d in _definitions(server, segment)}
        rows = canonical(table, "pipedrive")
        seen_kinds = set()
        for record in truth(server, name):
            stored = record["record"]["custom_fields"]
            got = _as_dict(rows[record["id"]]["custom_fields"])
            expected = {}
            for key, value in stored.items():
                if value is None:
                    continue
                definition = definitions[key]
                field_name = _snake(first_names.get(key, definition["name"]))
                expected[field_name] = {"value": _expected_value(definition, value, connection_id),
                                        "type": CANONICAL_TYPE[definition["field_type"]], "remote_key": key}
                seen_kinds.add(definition["field_type"])
            assert got == expected, (table, record["id"])
        assert seen_kinds == set(CANONICAL_TYPE), table


def test_custom_fields_of_every_kind_reach_canonical_named_and_survive_a_rename(data_dir, sandbox_factory,
                                                                                connect_sandbox):
    server = sandbox_factory("pipedrive", scale=40, custom_fields=True)
    connection = connect_sandbox(server, "pipedrive-fields", objects=OBJECTS)
    first = sync(connection)
    assert first.status == "success", first.error
    # Definitions: one call per entity per run (every definition fits one page of 500).
    calls = [r["path"] for r in request_log(server) if r["path"].endswith("Fields")]
    assert sorted(calls) == ["/v1/dealFields", "/v1/organizationFields", "/v1/personFields"]
    assert build(lineage("pipedrive")).success
    _assert_named_custom_fields(server, "pipedrive-fields", {})

    # Rename two fields at Pipedrive (the key stays), change a person, sync again: canonical keys unchanged.
    first_names: dict[str, str] = {}
    for segment, kind, new_name in (("personFields", "enum", "Customer segment"),
                                    ("dealFields", "monetary", "Discount granted")):
        field = next(f for f in _definitions(server, segment) if f["field_type"] == kind)
        first_names[field["key"]] = field["name"]
        answer = requests.put(f"{server.base_url}/v1/{segment}/{field['id']}", headers=AUTH,
                              json={"name": new_name}, timeout=10)
        assert answer.status_code == 200 and answer.json()["data"]["key"] == field["key"]
    mutate(server, "persons", update=3)
    second = sync(connection)
    assert second.status == "success", second.error
    assert second.records["custom_fields"] == 2          # only the renamed definitions are written again
    assert build(lineage("pipedrive")).success
    _assert_named_custom_fields(server, "pipedrive-fields", first_names)
    labels = {r["field_name"]: r["label"] for r in query(
        "select field_name, label from staging.stg_pipedrive__custom_fields where entity = 'person'")}
    assert labels["segment"] == "Customer segment"

    gate = run_gate(["crm_contacts", "crm_accounts", "crm_opportunities"])
    assert gate.success, [(c.table, c.expectation, c.column, c.observed) for c in gate.failed()]


def test_without_the_opt_in_values_keep_their_hash_keys_and_no_definition_is_read(data_dir, sandbox_factory,
                                                                                  connect_sandbox):
    server = sandbox_factory("pipedrive", scale=20, custom_fields=True)
    connection = connect_sandbox(server, "pipedrive-nofields", objects=OBJECTS[:-1])
    assert sync(connection).status == "success"
    assert not [r for r in request_log(server) if r["path"].endswith("Fields")]
    assert build(lineage("pipedrive")).success
    person = next(r for r in truth(server, "persons") if r["record"]["custom_fields"])
    got = _as_dict(canonical("crm_contacts", "pipedrive")[person["id"]]["custom_fields"])
    stored = {k: v for k, v in person["record"]["custom_fields"].items() if v is not None}
    assert got == {k: {"value": v, "type": "unknown", "remote_key": k} for k, v in stored.items()}
