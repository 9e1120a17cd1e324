"""Writing by natural key (canonry/reverse_etl/matching.py), end to end against the CRM sandboxes.

Runs last in the shared world (conftest.py): a Greenhouse sandbox joins it, its hires are pushed into
HubSpot, Salesforce and Pipedrive by the shipped `*_from_hires` syncs (matched by email: HubSpot's own upsert,
a SOQL lookup, a Pipedrive search) and read back through each CRM's API; a second push makes no call.
Then: two CRM records with one key and two model rows with one key are data errors of those rows only; the
SOQL lookup is batched under the URI limit; a Pipedrive create whose answer was lost (the push died right
after the POST) is found again by the re-run instead of being created twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
import yaml

from canonry.config import ConnectionsFile
from canonry.pipeline import build_runtime, sync
from canonry.reverse_etl import GateVerdict, gates, push
from canonry.reverse_etl import pusher as pusher_module
from canonry.sandbox import DEFAULT_TOKENS, start_sandbox
from canonry.sandbox.engine import SandboxServer
from canonry.validation import load_connections
from canonry.warehouse import PROJECT_ROOT
from canonry.writeback import comparable
from sources.salesforce import actions as salesforce_actions
from sources.salesforce.settings import API_VERSION
from tests.helpers import execute, query
from tests.reverse_etl.conftest import SCALE, write_requests

SHIPPED = PROJECT_ROOT / "reverse_etl"
SYNCS = {"hubspot": "hubspot_contacts_from_hires", "salesforce": "salesforce_contacts_from_hires",
         "pipedrive": "pipedrive_persons_from_hires"}
MODELS = {"hubspot": "rev_hubspot__contacts_from_hires", "salesforce": "rev_salesforce__contacts_from_hires",
          "pipedrive": "rev_pipedrive__persons_from_hires"}
COLUMNS = "(record_key, connection_id, email, first_name, last_name, full_name, job_title)"


@dataclass
class Hires:
    connections: ConnectionsFile
    verdicts: dict[str, GateVerdict]
    greenhouse: SandboxServer


@pytest.fixture(scope="module")
def hires(world) -> Iterator[Hires]:
    """The world plus a Greenhouse connection of the same tenant, synced, and the hires models gated."""
    server = start_sandbox("greenhouse", scale=SCALE)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("RETL_GREENHOUSE_SECRET", DEFAULT_TOKENS["greenhouse"])
            data = yaml.safe_load(world.config_path.read_text())
            data["connections"].append({"id": "greenhouse-acme", "tenant": "acme", "provider": "greenhouse",
                                        "auth": {"kind": "client_credentials", "secret": "env:RETL_GREENHOUSE_SECRET"},
                                        "base_url": server.base_url})
            path = world.tmp / "connections_with_ats.yml"
            path.write_text(yaml.safe_dump(data, sort_keys=False))
            mp.setenv("CANONRY_CONFIG", str(path))
            connections = load_connections(path)
            result = sync(connections.get("greenhouse-acme"))
            assert result.status == "success", result.error
            verdicts = gates(list(MODELS.values()), providers=["greenhouse", *MODELS])
            assert all(v.passed for v in verdicts.values()), {m: v.failed_checks for m, v in verdicts.items()}
            yield Hires(connections, verdicts, server)
    finally:
        server.stop()


# -- the CRMs' own APIs -----------------------------------------------------------------------------------
def api(world, provider: str, method: str, path: str, **kwargs) -> requests.Response:
    base = world.servers[provider].base_url
    if provider == "hubspot":
        headers = {"Authorization": f"Bearer {os.environ['RETL_HUBSPOT_TOKEN']}"}
    elif provider == "salesforce":
        headers = {"Authorization": f"Bearer {world.salesforce_token}"}
        base += f"/services/data/v{API_VERSION}"
    else:
        headers = {"x-api-token": os.environ["RETL_PIPEDRIVE_TOKEN"]}
    answer = requests.request(method, base + path, headers=headers, timeout=30, **kwargs)
    assert answer.status_code < 300, (method, path, answer.status_code, answer.text[:300])
    return answer


def read_back(world, provider: str, ids: list[str]) -> dict[str, dict]:
    """id -> {email, first_name, last_name, job_title} as the CRM's API answers it."""
    out = {}
    if provider == "hubspot":
        body = api(world, "hubspot", "POST", "/crm/v3/objects/contacts/batch/read", json={
            "inputs": [{"id": i} for i in ids], "properties": ["email", "firstname", "lastname", "jobtitle"]}).json()
        for item in body["results"]:
            p = item["properties"]
            out[str(item["id"])] = {"email": p.get("email"), "first_name": p.get("firstname"),
                                    "last_name": p.get("lastname"), "job_title": p.get("jobtitle")}
    elif provider == "salesforce":
        soql = ("SELECT Id, Email, FirstName, LastName, Title FROM Contact WHERE Id IN ("
                + ", ".join(f"'{i}'" for i in ids) + ")")
        for row in api(world, "salesforce", "GET", "/query", params={"q": soql}).json()["records"]:
            out[row["Id"]] = {"email": row["Email"], "first_name": row["FirstName"], "last_name": row["LastName"],
                              "job_title": row["Title"]}
    else:
        for record_id in ids:
            item = api(world, "pipedrive", "GET", f"/api/v2/persons/{record_id}").json()["data"]
            out[str(item["id"])] = {"email": item["emails"][0]["value"] if item["emails"] else None,
                                    "first_name": item["first_name"], "last_name": item["last_name"],
                                    "job_title": item["job_title"], "name": item["name"]}
    return out


def model_rows(provider: str) -> list[dict]:
    return query(f'select * from reverse_etl."{MODELS[provider]}" order by record_key')


def use_shipped_syncs(monkeypatch) -> None:
    monkeypatch.setenv("CANONRY_SYNCS_DIR", str(SHIPPED))


# -- hires into every CRM ------------------------------------------------------------------------------
def test_hires_reach_every_crm_by_email_and_a_second_push_writes_nothing(world, hires, monkeypatch):
    use_shipped_syncs(monkeypatch)
    rows = model_rows("salesforce")
    assert len(rows) >= 3 and all(r["email"] for r in rows)
    # One hire is already in Salesforce and in Pipedrive under the same email (no external id): updated there.
    known = rows[0]
    existing_sf = api(world, "salesforce", "POST", "/sobjects/Contact", json={
        "LastName": "Existing", "Email": known["email"].upper()}).json()["id"]
    existing_pd = str(api(world, "pipedrive", "POST", "/api/v2/persons", json={
        "name": "Existing Person", "emails": [{"value": known["email"], "primary": True, "label": "work"}]},
    ).json()["data"]["id"])
    for provider, name in SYNCS.items():
        dry = push(name, None, connections=hires.connections, dry_run=True).connections[0]
        real = push(name, hires.verdicts[MODELS[provider]], connections=hires.connections).connections[0]
        assert real.status == "success", (provider, real.error, real.rejections[:3], real.data_errors[:3])
        assert (dry.inserts, dry.updates) == (real.inserts, real.updates), provider
        assert real.written == len(model_rows(provider)) == real.inserts + real.updates, provider
        if provider != "hubspot":   # the record found by email is an update, the rest creates
            assert real.updates >= 1, provider
        state = {r["record_key"]: r["provider_id"] for r in query(
            "select record_key, provider_id from ops.push_state where model = ?", [name])}
        held = read_back(world, provider, list(state.values()))
        for row in model_rows(provider):
            got = held[str(state[row["record_key"]])]
            assert got["email"].lower() == row["email"], (provider, row["record_key"])
            for column in ("first_name", "last_name", "job_title"):
                assert comparable(got[column]) == comparable(row[column]), (provider, row["record_key"], column)
        if provider == "salesforce":
            assert state[known["record_key"]] == existing_sf
        if provider == "pipedrive":
            assert state[known["record_key"]] == existing_pd
            assert held[existing_pd]["name"] == known["full_name"]

    # Nothing changed: a second push of each makes no call at all, and the sandboxes saw no write.
    for server in world.servers.values():
        requests.delete(f"{server.base_url}/_sandbox/requests", timeout=30).raise_for_status()
    for provider, name in SYNCS.items():
        again = push(name, hires.verdicts[MODELS[provider]], connections=hires.connections).connections[0]
        assert (again.written, again.calls, again.unchanged) == (0, 0, len(model_rows(provider))), provider
    assert all(write_requests(server) == [] for server in world.servers.values())


# -- duplicate keys: data errors of those rows, the rest is pushed ----------------------------------------
@pytest.fixture
def restore_models() -> Iterator[None]:
    for model in MODELS.values():
        execute(f'create or replace table reverse_etl."{model}__saved" as select * from reverse_etl."{model}"')
    yield
    for model in MODELS.values():
        execute(f'create or replace table reverse_etl."{model}" as select * from reverse_etl."{model}__saved"')
        execute(f'drop table reverse_etl."{model}__saved"')


@pytest.mark.parametrize("provider", ["salesforce", "pipedrive"])
def test_two_crm_records_with_one_key_are_a_data_error_of_that_row(world, hires, provider, monkeypatch,
                                                                   restore_models):
    use_shipped_syncs(monkeypatch)
    email = f"twice.{provider}@example.com"
    for n in (1, 2):
        if provider == "salesforce":
            api(world, provider, "POST", "/sobjects/Contact", json={"LastName": f"Twin {n}", "Email": email})
        else:
            api(world, provider, "POST", "/api/v2/persons", json={
                "name": f"Twin {n}", "emails": [{"value": email, "primary": True, "label": "work"}]})
    connection_id = world.connection_id(provider)
    execute(f'insert into reverse_etl."{MODELS[provider]}" {COLUMNS} values (?, ?, ?, ?, ?, ?, ?), '
            "(?, ?, ?, ?, ?, ?, ?)",
            [f"ambiguous-{provider}", connection_id, email, "Ada", "Twin", "Ada Twin", "Analyst",
             f"fresh-{provider}", connection_id, f"fresh.{provider}@example.com", "Bo", "Fresh", "Bo Fresh", "Analyst"])
    name = SYNCS[provider]
    dry = push(name, None, connections=hires.connections, dry_run=True).connections[0]
    real = push(name, hires.verdicts[MODELS[provider]], connections=hires.connections).connections[0]
    assert (dry.inserts, dry.updates, len(dry.data_errors)) == (real.inserts, real.updates, 1) == (1, 0, 1)
    assert (real.written, real.status) == (1, "partial")
    (error,) = real.data_errors
    assert error["record_key"] == f"ambiguous-{provider}"
    assert f"2 {provider} persons" in error["message"] or f"2 {provider} contacts" in error["message"]
    assert "will not guess" in error["message"]
    logged = query("select record_key, error_class from ops.push_log where model = ? and status = 'data_error'",
                   [name])
    assert {(r["record_key"], r["error_class"]) for r in logged} == {(f"ambiguous-{provider}", "data_error")}


def test_two_model_rows_with_one_key_are_data_errors_the_rest_is_pushed(world, hires, monkeypatch, restore_models):
    use_shipped_syncs(monkeypatch)
    connection_id = world.connection_id("salesforce")
    execute(f'insert into reverse_etl."{MODELS["salesforce"]}" {COLUMNS} values (?, ?, ?, ?, ?, ?, ?), '
            "(?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?)",
            ["dup-1", connection_id, "same@example.com", "A", "One", "A One", "Analyst",
             "dup-2", connection_id, "SAME@example.com", "B", "Two", "B Two", "Analyst",
             "single", connection_id, "single@example.com", "C", "Three", "C Three", "Analyst"])
    requests.delete(f"{world.servers['salesforce'].base_url}/_sandbox/requests", timeout=30).raise_for_status()
    real = push(SYNCS["salesforce"], hires.verdicts[MODELS["salesforce"]],
                connections=hires.connections).connections[0]
    assert (real.inserts, real.written, real.status) == (1, 1, "partial")
    assert sorted(e["record_key"] for e in real.data_errors) == ["dup-1", "dup-2"]
    log = requests.get(f"{world.servers['salesforce'].base_url}/_sandbox/requests", timeout=30).json()["requests"]
    lookups = [r for r in log if r["method"] == "GET" and r["path"].endswith("/query")]
    assert len(lookups) == 1   # only the row that is pushed was looked up


# -- the SOQL lookup stays under Salesforce's URI limit ----------------------------------------------------
def test_soql_lookups_are_batched_under_the_uri_limit(world):
    server = world.servers["salesforce"]
    too_long = "SELECT Id FROM Contact WHERE Email IN (" + ", ".join(f"'x{n}@example.com'" for n in range(900)) + ")"
    refused = requests.get(f"{server.base_url}/services/data/v{API_VERSION}/query", params={"q": too_long},
                           headers={"Authorization": f"Bearer {world.salesforce_token}"}, timeout=30)
    assert refused.status_code == 414 and refused.json()[0]["errorCode"] == "URI_TOO_LONG"

    held = api(world, "salesforce", "GET", "/query", params={
        "q": "SELECT Email FROM Contact WHERE Email != null LIMIT 1"}).json()["records"][0]["Email"]
    wanted = [f"nobody.{n:04d}.o'brien@example.com" for n in range(1500)] + [held.upper()]
    runtime = build_runtime(world.connections.get(world.connection_id("salesforce")))
    requests.delete(f"{server.base_url}/_sandbox/requests", timeout=30).raise_for_status()
    found = salesforce_actions.writer(runtime, "contacts").find("email", wanted)
    assert list(found) == [held.lower()] and len(found[held.lower()]) == 1
    log = requests.get(f"{server.base_url}/_sandbox/requests", timeout=30).json()["requests"]
    queries = [r for r in log if r["path"].endswith("/query")]
    assert len(queries) >= 5, len(queries)   # 1,501 addresses of ~40 URL-encoded characters: several queries
    instance = f"{server.base_url}/services/data/v{API_VERSION}/query?"
    soqls = salesforce_actions.writer(runtime, "contacts")._in_queries("Email", sorted(v.lower() for v in wanted))
    assert len(soqls) == len(queries)
    assert all(len(instance) + len(urlencode({"q": q})) <= salesforce_actions.MAX_QUERY_URL for q in soqls)


# -- a Pipedrive create whose answer was lost is not created twice --------------------------------------------
def test_a_pipedrive_create_lost_after_the_post_is_found_not_created_again(world, monkeypatch):
    model, name = "rev_pipedrive__organizations", "pipedrive_organizations_crash"
    directory = Path(os.environ["CANONRY_SYNCS_DIR"])
    (directory / f"{name}.yml").write_text(yaml.safe_dump({
        "model": model, "destination": {"provider": "pipedrive", "object": "organizations"},
        "mode": "upsert", "fields": {"name": "name"}}))
    execute(f'create or replace table reverse_etl."{model}__saved" as select * from reverse_etl."{model}"')
    server = world.servers["pipedrive"]
    try:
        keys = ["crash-org-1", "crash-org-2"]
        execute(f'insert into reverse_etl."{model}" (record_key, connection_id, external_id, name) values '
                "(?, ?, null, ?), (?, ?, null, ?)",
                [keys[0], "pipedrive-acme", "Lost Answer One", keys[1], "pipedrive-acme", "Lost Answer Two"])
        real_commit = pusher_module._commit
        crashed = []

        def crash_once_after_the_post(run_id, sync_, connection, log, *args, **kwargs):
            # The POSTs went out and Pipedrive created both; the process dies before recording that.
            if not crashed and any(row["status"] == "written" for row in log):
                crashed.append(True)
                raise RuntimeError("killed between the provider's answer and the push log")
            return real_commit(run_id, sync_, connection, log, *args, **kwargs)

        monkeypatch.setattr(pusher_module, "_commit", crash_once_after_the_post)
        requests.delete(f"{server.base_url}/_sandbox/pipedrive/writes", timeout=30).raise_for_status()
        verdict = world.verdicts[model]
        with pytest.raises(RuntimeError, match="killed between"):
            push(name, verdict, connections=world.connections, only_ids=set(keys))
        posts = lambda: [w for w in requests.get(f"{server.base_url}/_sandbox/pipedrive/writes",  # noqa: E731
                                                 timeout=30).json()["writes"] if w["method"] == "POST"]
        assert len(posts()) == 2
        assert {r["status"] for r in query("select status from ops.push_log where model = ?", [name])} == {"in_flight"}

        again = push(name, verdict, connections=world.connections, only_ids=set(keys)).connections[0]
        assert (again.verified, again.written, again.status) == (2, 0, "success"), (again.error, again.rejections)
        assert len(posts()) == 2, "a create was sent again"
        organizations = api(world, "pipedrive", "GET", "/api/v2/organizations", params={"limit": 500}).json()["data"]
        for label in ("Lost Answer One", "Lost Answer Two"):
            assert [o["name"] for o in organizations].count(label) == 1
        state = {r["record_key"]: r["provider_id"] for r in query(
            "select record_key, provider_id from ops.push_state where model = ?", [name])}
        assert set(state) == set(keys)
        assert {str(o["id"]) for o in organizations if o["name"].startswith("Lost Answer")} == set(state.values())
        third = push(name, verdict, connections=world.connections, only_ids=set(keys)).connections[0]
        assert (third.written, third.calls, third.unchanged) == (0, 0, 2)
    finally:
        execute(f'create or replace table reverse_etl."{model}" as select * from reverse_etl."{model}__saved"')
        execute(f'drop table reverse_etl."{model}__saved"')
