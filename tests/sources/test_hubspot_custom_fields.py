"""HubSpot custom properties end to end: custom properties of every kind (text, number, date, select,
multi-select checkbox, currency, owner reference) -> definitions from /crm/v3/properties/{object} (opt-in
object `custom_properties`) -> canonical `custom_fields` {internal name: {value, type, remote_key}}; a
relabel at HubSpot keeps the key."""

from __future__ import annotations

import json

import requests

from canonry.pipeline import sync
from canonry.sandbox import DEFAULT_TOKENS
from canonry.sandbox.hubspot.properties import CUSTOM_PROPERTIES, option_value
from canonry.transform import build
from canonry.warehouse import connect
from expectations.gate import run_gate
from tests.helpers import canonical, lineage, mutate, query, request_log, truth

AUTH = {"authorization": f"Bearer {DEFAULT_TOKENS['hubspot']}"}
OBJECTS = ["contacts", "companies", "deals", "owners", "pipelines", "custom_properties"]
CANONICAL_TYPE = {"text": "text", "number": "number", "date": "date", "select": "enum", "checkbox": "multi_select",
                  "currency": "currency", "owner": "user_reference"}
TABLES = {"contacts": "crm_contacts", "companies": "crm_accounts", "deals": "crm_opportunities"}


def _expected(kind: str, options: tuple[str, ...], value: str, connection_id: str):
    labels = {option_value(o): o for o in options}
    if kind == "number":
        return float(value)
    if kind == "select":
        return labels[value]
    if kind == "checkbox":
        return [labels[v] for v in value.split(";")]
    if kind == "currency":
        return {"amount": float(value), "currency": None}
    if kind == "owner":
        return query("select md5(?) as id", [f"{connection_id}:{value}"])[0]["id"]
    return value


def _assert_named_custom_fields(server, connection_id: str) -> None:
    for name, table in TABLES.items():
        specs = {spec[0]: spec for spec in CUSTOM_PROPERTIES[name]}
        rows = canonical(table, "hubspot")
        kinds = set()
        for record in truth(server, name):
            properties = record["record"]["properties"]
            expected = {}
            for prop, (_, _, kind, options) in specs.items():
                if properties.get(prop) not in (None, ""):
                    expected[prop] = {"value": _expected(kind, options, properties[prop], connection_id),
                                      "type": CANONICAL_TYPE[kind], "remote_key": prop}
                    kinds.add(kind)
            got = rows[record["id"]]["custom_fields"]
            assert (got if isinstance(got, dict) else json.loads(got)) == expected, (table, record["id"])
        assert kinds == set(CANONICAL_TYPE), table


def test_custom_properties_of_every_kind_reach_canonical_and_survive_a_relabel(data_dir, sandbox_factory,
                                                                               connect_sandbox):
    server = sandbox_factory("hubspot", scale=40, custom_properties=True)
    connection = connect_sandbox(server, "hubspot-props", objects=OBJECTS)
    first = sync(connection)
    assert first.status == "success", first.error
    # Definitions: one call per object per run, shared by the definitions resource and the object reads.
    calls = sorted(r["path"] for r in request_log(server) if r["path"].startswith("/crm/v3/properties/"))
    assert calls == ["/crm/v3/properties/companies", "/crm/v3/properties/contacts", "/crm/v3/properties/deals"]
    assert first.records["custom_properties"] == sum(len(v) for v in CUSTOM_PROPERTIES.values())
    assert build(lineage("hubspot")).success
    _assert_named_custom_fields(server, "hubspot-props")

    relabel = requests.patch(f"{server.base_url}/crm/v3/properties/contacts/segment", headers=AUTH,
                             json={"label": "Customer segment"}, timeout=10)
    assert relabel.status_code == 200 and relabel.json()["name"] == "segment"
    mutate(server, "contacts", update=3)
    second = sync(connection)
    assert second.status == "success", second.error
    assert second.records["custom_properties"] == 1      # only the relabelled definition is written again
    assert build(lineage("hubspot")).success
    _assert_named_custom_fields(server, "hubspot-props")
    labels = {r["remote_key"]: r["label"] for r in query(
        "select remote_key, label from staging.stg_hubspot__custom_properties where entity = 'contacts'")}
    assert labels["segment"] == "Customer segment"

    gate = run_gate(["crm_contacts", "crm_accounts", "crm_opportunities"])
    assert gate.success, [(c.table, c.expectation, c.column, c.observed) for c in gate.failed()]
    _assert_run_scoped_gate(second.load_ids, gate)


def _assert_run_scoped_gate(load_ids: list[str], full) -> None:
    """A gate scoped to one run's loads checks that run's rows (row-level expectations) and the table's
    aggregates (row count, freshness): a bad row of an earlier load is left to the full gate."""
    scoped = run_gate(["crm_contacts"], load_ids=load_ids)
    assert scoped.success, [(c.expectation, c.column, c.observed) for c in scoped.failed()]
    assert sorted((c.expectation, c.column) for c in scoped.checks) == sorted(
        (c.expectation, c.column) for c in full.checks if c.table == "crm_contacts")
    rows = query("select contact_id, _load_id in (select unnest(?)) as this_run from canonical.crm_contacts "
                 "where not is_deleted order by contact_id", [load_ids])
    old = next(r["contact_id"] for r in rows if not r["this_run"])
    new = next(r["contact_id"] for r in rows if r["this_run"])
    conn = connect()
    try:
        conn.execute("update canonical.crm_contacts set tenant_id = null where contact_id = ?", [old])
    finally:
        conn.close()
    assert run_gate(["crm_contacts"], load_ids=load_ids).success
    assert [(c.column, c.unexpected_count) for c in run_gate(["crm_contacts"]).failed()] == [("tenant_id", 1)]
    conn = connect()
    try:
        conn.execute("update canonical.crm_contacts set tenant_id = null where contact_id = ?", [new])
    finally:
        conn.close()
    failed = run_gate(["crm_contacts"], load_ids=load_ids).failed()
    assert [(c.expectation, c.column, c.unexpected_count) for c in failed] == [
        ("ExpectColumnValuesToNotBeNull", "tenant_id", 1)]
