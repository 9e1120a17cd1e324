"""Pipedrive end to end: sandbox over HTTP -> dlt -> raw_pipedrive -> dbt -> canonical crm_* tables."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

import pytest
import requests

from canonry.errors import ErrorClass
from canonry.pipeline import sync
from canonry.providers import spec
from canonry.transform import build, run_dbt, target_dir
from canonry.warehouse import connect
from expectations.gate import run_gate, tables_fed_by
from tests.crm_truth import (
    assert_pipeline_value_matches,
    assert_stage_flags_match_status,
    expected_amount_reporting,
    reporting_rates,
)
from tests.helpers import canonical, clear_request_log, lineage, mutate, query, request_log, set_faults, truth
from tests.pg import WAREHOUSES
from tests.reliability.providers import CRUD, ProviderCase, build_canonical, own_truth

SCALE = 200  # persons 400, activities 600 (two pages of 500), organizations/deals/notes 200, leads 100
PAGE = 500
TASK_TYPES, ENGAGEMENT_TYPES = {"task", "deadline"}, {"call", "meeting", "email"}


def api_log(server) -> list[dict]:
    return [r for r in request_log(server) if not r["path"].startswith("/_sandbox")]


def _ids_equal(table: str, expected: dict[str, dict]) -> dict[str, dict]:
    rows = canonical(table, "pipedrive")
    assert set(rows) == set(expected), (
        f"{table}: missing {sorted(set(expected) - set(rows))[:5]}, extra {sorted(set(rows) - set(expected))[:5]}")
    for remote_id, record in expected.items():
        assert rows[remote_id]["is_deleted"] == record["deleted"], f"{table} {remote_id}: is_deleted"
        assert (rows[remote_id]["deleted_at"] is not None) == record["deleted"], f"{table} {remote_id}: deleted_at"
    return rows


def _assert_equals_truth(server, *, deleted_visible: bool = True) -> None:
    """Every canonical row matches the sandbox, key fields compared row by row."""
    def expected(name: str, keep=lambda r: True) -> dict[str, dict]:
        return {r["id"]: r for r in truth(server, name) if keep(r)}

    persons = expected("persons")
    for remote_id, row in _ids_equal("crm_contacts", persons).items():
        rec = persons[remote_id]["record"]
        if persons[remote_id]["deleted"]:
            continue
        assert (row["first_name"], row["last_name"]) == (rec["first_name"], rec["last_name"]), remote_id
        assert json.loads(row["emails"]) == [{"value": rec["emails"][0]["value"], "type": "WORK"}]
        assert row["tenant_id"] == "acme"

    organizations = expected("organizations")
    for remote_id, row in _ids_equal("crm_accounts", organizations).items():
        rec = organizations[remote_id]["record"]
        assert row["name"] == rec["name"] and row["website"] == rec["website"]
        if not organizations[remote_id]["deleted"]:
            address = json.loads(row["addresses"])[0]
            assert address["city"] == rec["address"]["locality"] and len(address["country"]) == 2

    deals = expected("deals")
    rates = reporting_rates("USD")
    for remote_id, row in _ids_equal("crm_opportunities", deals).items():
        rec = deals[remote_id]["record"]
        assert row["name"] == rec["title"]
        amount = Decimal(str(rec["value"])).quantize(Decimal("0.01"))
        assert row["amount"] == amount and row["currency"] == rec["currency"]
        # Every converted amount: the sandbox's value x the seed's rate, to the cent (USD: the default var).
        assert row["reporting_currency"] == "USD", remote_id
        assert row["amount_reporting"] == expected_amount_reporting(amount, rec["currency"], rates), remote_id
        assert row["amount_reporting"] is not None, f"{remote_id}: {rec['currency']} has no rate in the seed"
        assert row["status"] == _deal_status(rec), remote_id

    notes = expected("notes")
    for remote_id, row in _ids_equal("crm_notes", notes).items():
        assert row["content"] == notes[remote_id]["record"]["content"]

    activities = truth(server, "activities")
    tasks = {r["id"]: r for r in activities if r["record"]["type"] in TASK_TYPES}
    for remote_id, row in _ids_equal("crm_tasks", tasks).items():
        rec = tasks[remote_id]["record"]
        assert row["subject"] == rec["subject"]
        assert row["status"] == ("CLOSED" if rec["done"] else "OPEN")
    engagements = {r["id"]: r for r in activities if r["record"]["type"] in ENGAGEMENT_TYPES}
    for remote_id, row in _ids_equal("crm_engagements", engagements).items():
        assert row["type"] == engagements[remote_id]["record"]["type"].upper()

    users = expected("users")
    for remote_id, row in _ids_equal("crm_users", users).items():
        assert row["name"] == users[remote_id]["record"]["name"]
        assert row["is_active"] == users[remote_id]["record"]["active_flag"]

    leads = expected("leads", lambda r: not r["deleted"])  # lead deletes need the key scan (own test)
    rows = canonical("crm_leads", "pipedrive")
    assert set(rows) == set(leads)
    for remote_id, row in rows.items():
        rec = leads[remote_id]["record"]
        assert row["title"] == rec["title"] and row["status"] == ("CLOSED" if rec["is_archived"] else "OPEN")

    stages = expected("stages")
    for remote_id, row in _ids_equal("crm_stages", stages).items():
        assert row["name"] == stages[remote_id]["record"]["name"] and row["pipeline"] is not None

    # No duplicate canonical ids anywhere.
    for table, id_col in (("crm_contacts", "contact_id"), ("crm_accounts", "account_id"),
                          ("crm_opportunities", "opportunity_id"), ("crm_notes", "note_id"),
                          ("crm_tasks", "task_id"), ("crm_engagements", "engagement_id"), ("crm_leads", "lead_id"),
                          ("crm_users", "user_id"), ("crm_stages", "stage_id")):
        counts = query(f"select count(*) as n, count(distinct {id_col}) as d from canonical.{table}")[0]
        assert counts["n"] == counts["d"], f"{table} has duplicate ids"


def _deal_status(record: dict) -> str:
    status = record["status"] if record["status"] != "deleted" else (
        "won" if record["won_time"] else "lost" if record["lost_time"] else "open")
    return status.upper()


def _expected_pipeline_value(server) -> dict[str, tuple[int, Decimal]]:
    """Per status, the live deals and the sum of their values in USD, from the sandbox's truth and the seed."""
    rates, out = reporting_rates("USD"), {}
    for item in truth(server, "deals"):
        if item["deleted"]:
            continue
        rec = item["record"]
        value = expected_amount_reporting(Decimal(str(rec["value"])).quantize(Decimal("0.01")), rec["currency"], rates)
        deals, total = out.get(_deal_status(rec), (0, Decimal(0)))
        out[_deal_status(rec)] = (deals + 1, total + value)
    return out


def _assert_foreign_keys_resolve() -> None:
    for child, column, parent, parent_id in (
        ("crm_contacts", "account_id", "crm_accounts", "account_id"),
        ("crm_contacts", "owner_user_id", "crm_users", "user_id"),
        ("crm_opportunities", "account_id", "crm_accounts", "account_id"),
        ("crm_opportunities", "stage_id", "crm_stages", "stage_id"),
        ("crm_notes", "contact_id", "crm_contacts", "contact_id"),
        ("crm_tasks", "opportunity_id", "crm_opportunities", "opportunity_id"),
    ):
        dangling = query(f"""
            select count(*) as n from canonical.{child} x
            left join canonical.{parent} p on p.{parent_id} = x.{column}
            where x.provider = 'pipedrive' and x.{column} is not null and p.{parent_id} is null""")[0]["n"]
        assert dangling == 0, f"{child}.{column} -> {parent}: {dangling} dangling"
    linked = query("select count(*) as n from canonical.crm_opportunities where stage_id is not null "
                   "and account_id is not null and provider = 'pipedrive'")[0]["n"]
    assert linked > 0


@pytest.mark.parametrize("warehouse", WAREHOUSES, indirect=True)
def test_full_then_incremental_equals_sandbox_truth(warehouse, sandbox_factory, connect_sandbox):
    server = sandbox_factory("pipedrive", scale=SCALE)
    connection = connect_sandbox(server, "pipedrive-acme")

    first = sync(connection)
    assert first.status == "success", first.error
    assert first.records["persons"] == 2 * SCALE and first.records["activities"] == 3 * SCALE
    assert first.records["deals"] == SCALE and first.records["leads"] == SCALE // 2

    # A random sample created, updated and deleted through the control endpoint, then an incremental run.
    changed = {name: mutate(server, name, create=3, update=5, delete=2, seed=11)
               for name in ("persons", "organizations", "deals", "activities", "notes")}
    changed["leads"] = mutate(server, "leads", create=2, update=4, seed=11)
    mutate(server, "users", update=1, seed=11)
    clear_request_log(server)
    second = sync(connection)
    assert second.status == "success", second.error
    # dbt: the CRM marts and everything upstream of them (the ATS marts have nothing to do with this).
    assert build(["+marts.crm"]).success
    _assert_equals_truth(server)
    _assert_foreign_keys_resolve()
    assert_stage_flags_match_status("pipedrive", stages_carry_outcome=False)
    if warehouse == "duckdb":  # the analyst guide's examples are DuckDB SQL
        assert_pipeline_value_matches("pipedrive", _expected_pipeline_value(server))
    # The Great Expectations gate covers (and passes) every table Pipedrive feeds.
    tables = tables_fed_by(["pipedrive"])
    assert set(tables) == set(spec("pipedrive").canonical_tables) and len(tables) == 9
    gate = run_gate(tables)
    assert gate.success, [(c.table, c.expectation, c.column, c.observed) for c in gate.failed()]
    assert set(gate.tables()) == set(tables)
    updated = changed["persons"]["update"][0]
    last_name = next(r for r in truth(server, "persons") if r["id"] == updated)["record"]["last_name"]
    assert canonical("crm_contacts", "pipedrive")[updated]["last_name"] == last_name.strip()
    for deleted in changed["deals"]["delete"]:
        assert canonical("crm_opportunities", "pipedrive")[deleted]["is_deleted"]

    # The incremental run read only what changed: one page per object, deletes from /v1/recents.
    calls = Counter(r["path"] for r in api_log(server))
    assert calls == Counter({
        "/api/v2/persons": 1, "/api/v2/organizations": 1, "/api/v2/deals": 1, "/api/v2/activities": 1,
        "/v1/recents": 4,   # deletes of persons, organizations, activities; notes' changes
        "/v1/leads": 1,     # newest first, stopped at the cursor
        "/v1/users": 1, "/api/v2/stages": 1, "/api/v2/pipelines": 1,  # reference lists, read whole
    })
    assert all("updated_since=" in r["query"] for r in api_log(server) if r["path"].startswith("/api/v2/")
               and r["path"] not in ("/api/v2/stages", "/api/v2/pipelines"))
    assert second.records["persons"] == 3 + 5 + 2



def test_a_reporting_currency_without_rates_gives_null_amounts_and_a_warning_naming_the_currencies(
        data_dir, sandbox_factory, connect_sandbox):
    """`--vars '{reporting_currency: CHF}'` where the seed has no CHF rate: every amount_reporting is null (never
    a guess), the warn test names the currencies, the build still passes. The second build is incremental and
    no raw row changed: the mart's post-hook re-converts the rows (the conversion is not incremental), and so
    does a later run after a rate is added."""
    server = sandbox_factory("pipedrive", scale=30)
    assert sync(connect_sandbox(server)).status == "success"
    assert build(lineage("pipedrive")).success
    deals = truth(server, "deals")
    currencies = {r["record"]["currency"] for r in deals}
    assert len(currencies) > 1
    converted = query("select count(*) as n, count(amount_reporting) as converted from canonical.crm_opportunities")
    assert converted[0]["n"] == converted[0]["converted"] == len(deals)

    rebuilt = run_dbt(["build", "--select", *lineage("pipedrive"), "--vars", "{reporting_currency: CHF}"])
    assert rebuilt.success, rebuilt.error or [(n.name, n.message) for n in rebuilt.failures()]
    assert [n.name for n in rebuilt.warnings()] == ["reporting_currency_rates_missing"]
    rows = query("select reporting_currency, count(*) as n, count(amount_reporting) as converted "
                 "from canonical.crm_opportunities group by 1")
    assert rows == [{"reporting_currency": "CHF", "n": len(deals), "converted": 0}]
    # The warning's rows (the test's compiled SQL, run as dbt ran it) name every currency left without a rate.
    compiled = next((target_dir() / "compiled").rglob("reporting_currency_rates_missing.sql")).read_text()
    missing = query(compiled)
    assert {r["missing_currency"] for r in missing} == currencies
    assert {r["reporting_currency"] for r in missing} == {"CHF"} and sum(r["opportunities"] for r in missing) == len(deals)

    # A rate added to the seed's table (what `dbt seed` of a replaced file loads) reaches the rows already in
    # the mart at the next incremental run of it alone, though none of their raw rows changed.
    conn = connect()
    try:
        conn.execute("insert into staging.reporting_currency_rates values ('EUR', 'CHF', 0.95)")
    finally:
        conn.close()
    assert run_dbt(["run", "--select", "crm_opportunities", "--vars", "{reporting_currency: CHF}"]).success
    euro = [r for r in deals if r["record"]["currency"] == "EUR"]
    rows = query("select remote_id, amount, amount_reporting from canonical.crm_opportunities where currency = 'EUR'")
    assert len(rows) == len(euro) > 0
    assert all(r["amount_reporting"] == (r["amount"] * Decimal("0.95")).quantize(Decimal("0.01"), ROUND_HALF_UP)
               for r in rows), rows
    assert query("select count(amount_reporting) as n from canonical.crm_opportunities where currency <> 'EUR'"
                 ) == [{"n": 0}]

def test_api_efficiency_full_is_pages_and_incremental_is_changes(data_dir, sandbox_factory, connect_sandbox):
    server = sandbox_factory("pipedrive", scale=SCALE)
    connection = connect_sandbox(server, objects=["persons", "activities", "deals", "notes", "leads"])
    assert sync(connection).status == "success"
    log = api_log(server)
    sizes = {"/api/v2/persons": 2 * SCALE, "/api/v2/activities": 3 * SCALE, "/api/v2/deals": SCALE,
             "/v1/notes": SCALE, "/v1/leads": SCALE // 2}
    for path, size in sizes.items():
        lists = [r for r in log if r["path"] == path]
        assert len(lists) == math.ceil(size / PAGE), path
        assert all("limit=500" in r["query"] for r in lists), path
    assert len(log) == sum(math.ceil(s / PAGE) for s in sizes.values())  # no other call on a full sync
    # API tokens travel in the x-api-token header, never in the URL.
    assert not any("api_token" in r["query"] for r in log)

    # k changes cost ceil(k / 500) list pages whatever N is; every other object answers in one call.
    for k in (3, 550):
        mutate(server, "activities", update=k, seed=k)
        time.sleep(1.1)  # whole-second timestamps: keep the two rounds' changes apart
        clear_request_log(server)
        # (settle 0: versions of the previous round are final and remembered, so counts are exact)
        result = sync(connection, on_start=lambda runtime: runtime.options.update(settle_seconds=0))
        assert result.status == "success", result.error
        calls = Counter(r["path"] for r in api_log(server))
        assert calls == Counter({"/api/v2/activities": math.ceil(k / PAGE), "/api/v2/persons": 1,
                                 "/api/v2/deals": 1, "/v1/leads": 1,
                                 # deletes of persons and activities, notes' changes; /recents lists the
                                 # k activity changes too (deletes are among them): ceil(k / 500) pages
                                 "/v1/recents": 2 + math.ceil(k / PAGE)})
        assert result.records["activities"] == k


def test_lookback_rereads_are_deduplicated_and_lead_deletes_found_by_key_scan(data_dir, sandbox_factory,
                                                                            connect_sandbox):
    server = sandbox_factory("pipedrive", scale=60)
    connection = connect_sandbox(server, objects=["persons", "notes", "leads"], lookback="1h",
                                 deletes={"full_scan_every": "2s"})
    no_settle = {"on_start": lambda runtime: runtime.options.update(settle_seconds=0)}
    assert sync(connection, **no_settle).status == "success"
    mutate(server, "persons", update=4, delete=2, seed=3)
    mutate(server, "notes", update=3, delete=1, seed=3)
    gone = mutate(server, "leads", delete=3, seed=5)["delete"]  # Pipedrive lists no deleted leads
    time.sleep(2.1)  # past the changes' second (versions final, remembered) and the key-scan interval
    clear_request_log(server)
    second = sync(connection, **no_settle)
    assert second.records["persons"] == 6 and second.records["notes"] == 4
    deleted = {r["remote_id"] for r in query("select remote_id from raw_pipedrive.leads where is_deleted")}
    assert deleted == set(gone)
    assert Counter(r["path"] for r in api_log(server))["/v1/leads"] == 1  # 30 leads: one page is the scan

    # A third run re-reads the last hour (look-back) and emits nothing it already loaded.
    third = sync(connection, **no_settle)
    assert third.status == "success"
    assert third.records.get("persons", 0) == 0 and third.records.get("notes", 0) == 0
    assert third.records.get("leads", 0) == 0  # newest first, stopped at the cursor; nothing new
    for table in ("persons", "notes", "leads"):
        dupes = query(f"select count(*) as n from (select remote_id, remote_updated_at, is_deleted from "
                      f"raw_pipedrive.{table} group by all having count(*) > 1)")[0]["n"]
        assert dupes == 0, table


# Object -> its canonical table, for the update-then-delete test (activities: a task-type one, crm_tasks).
UPDATED_THEN_DELETED = {"persons": "crm_contacts", "organizations": "crm_accounts", "deals": "crm_opportunities",
                        "activities": "crm_tasks", "notes": "crm_notes"}


def test_a_record_updated_then_deleted_between_two_syncs_ends_deleted(data_dir, sandbox_factory, connect_sandbox):
    """One record of each object is updated, then deleted (within the same whole second of `update_time`)
    after the first sync: the second sync reads the delete (v2 `status=deleted` for deals, /v1/recents for
    the others, notes included) and the canonical row ends deleted, not left at its earlier live version."""
    server = sandbox_factory("pipedrive", scale=30)
    connection = connect_sandbox(server, objects=list(UPDATED_THEN_DELETED))
    assert sync(connection).status == "success"
    targets = {}
    for name in UPDATED_THEN_DELETED:
        alive = [r for r in truth(server, name) if not r["deleted"]
                 and (name != "activities" or r["record"]["type"] in TASK_TYPES)]
        targets[name] = alive[0]["id"]
        assert mutate(server, name, update=[targets[name]]) == {"update": [targets[name]]}
        assert mutate(server, name, delete=[targets[name]]) == {"delete": [targets[name]]}
    second = sync(connection)
    assert second.status == "success", second.error
    build_canonical("pipedrive")
    for name, table in UPDATED_THEN_DELETED.items():
        assert next(r for r in truth(server, name) if r["id"] == targets[name])["deleted"], name
        row = canonical(table, "pipedrive")[targets[name]]
        assert row["is_deleted"] and row["deleted_at"] is not None, (name, targets[name])


def test_bad_token_is_auth_expired_with_a_clear_message(data_dir, sandbox_factory, connect_sandbox):
    server = sandbox_factory("pipedrive", scale=30)
    bad = connect_sandbox(server, "pipedrive-bad", token="not-a-real-token", objects=["persons"])
    result = sync(bad)
    assert result.status == "failed"
    assert result.error.error_class == ErrorClass.AUTH_EXPIRED
    message = str(result.error)
    assert "provider=pipedrive" in message and "endpoint=/api/v2/persons" in message and "status=401" in message
    assert "unauthorized access" in message and "What to do" in message
    assert "not-a-real-token" not in message
    assert [r["status"] for r in api_log(server)] == [401]  # never retried
    errors = query("select error_class, provider, endpoint from ops.sync_errors")
    assert errors[-1] == {"error_class": "auth_expired", "provider": "pipedrive", "endpoint": "/api/v2/persons"}


def test_429_is_retried_after_the_reset_and_the_budget_learns_the_limit(data_dir, sandbox_factory,
                                                                      connect_sandbox):
    # A storm of 429s (Pipedrive's body and x-ratelimit-* headers): retried, then the sync succeeds.
    server = sandbox_factory("pipedrive", scale=30)
    connection = connect_sandbox(server, objects=["persons", "organizations"])
    set_faults(server, storm_429=2)  # each answers x-ratelimit-reset: 1
    result = sync(connection)
    assert result.status == "success", result.error
    assert result.throttled == 2 and result.records["persons"] == 60
    statuses = [r["status"] for r in api_log(server)]
    assert statuses.count(429) == 2 and statuses[-1] == 200
    throttled = requests.get(f"{server.base_url}/api/v2/persons", headers={"x-api-token": "x"}, timeout=10)
    assert throttled.status_code == 401 and throttled.json() == {
        "success": False, "error": "unauthorized access", "errorCode": 401,
        "error_info": "Please check developers.pipedrive.com"}

    # A plan with a small burst limit: the client reads x-ratelimit-limit and slows down to it.
    small = sandbox_factory("pipedrive", scale=30, burst_limit=3)
    result = sync(connect_sandbox(small, "pipedrive-small-plan",
                                  objects=["persons", "deals", "users", "stages", "pipelines", "leads"]))
    assert result.status == "success", result.error
    statuses = [r["status"] for r in api_log(small)]
    assert len(statuses) == 6 and statuses.count(429) <= 1


def test_writes_are_logged_and_injected_failures_answer_like_pipedrive(data_dir, sandbox_factory,
                                                                       connect_sandbox):
    server = sandbox_factory("pipedrive", scale=30)
    connection = connect_sandbox(server, objects=["persons", "deals"])
    assert sync(connection).status == "success"
    headers = {"x-api-token": "sandbox-pipedrive-api-token"}
    base = server.base_url
    created = requests.post(f"{base}/api/v2/persons", json={"name": "Grace Write", "org_id": 200001,
                                                             "emails": [{"value": "g@example.com"}]},
                            headers=headers, timeout=10)
    assert created.status_code == 201
    person_id = created.json()["data"]["id"]
    assert requests.patch(f"{base}/api/v2/persons/{person_id}", json={"last_name": "Hopper"}, headers=headers,
                          timeout=10).json()["data"]["name"] == "Grace Hopper"
    assert requests.put(f"{base}/v1/deals/300001", json={"status": "won"}, headers=headers,
                        timeout=10).status_code == 200
    requests.post(f"{base}/_sandbox/pipedrive/write_failures", json={
        "object": "persons", "ids": ["100002"], "status": 400, "error": "Person is locked"}, timeout=10)
    failed = requests.delete(f"{base}/api/v2/persons/100002", headers=headers, timeout=10)
    assert failed.status_code == 400 and failed.json()["error"] == "Person is locked"
    assert requests.delete(f"{base}/api/v2/persons/100003", headers=headers, timeout=10).status_code == 200
    missing = requests.post(f"{base}/api/v2/deals", json={"value": 5}, headers=headers, timeout=10)
    assert missing.status_code == 400 and missing.json()["success"] is False

    writes = requests.get(f"{base}/_sandbox/pipedrive/writes", timeout=10).json()["writes"]
    assert [(w["method"], w["object"], w["status"]) for w in writes] == [
        ("POST", "persons", 201), ("PATCH", "persons", 200), ("PUT", "deals", 200),
        ("DELETE", "persons", 400), ("DELETE", "persons", 200), ("POST", "deals", 400)]

    # The next incremental run reads the writes back.
    time.sleep(1.1)
    result = sync(connection)
    assert result.status == "success", result.error
    rows = query("select remote_id, is_deleted, payload from raw_pipedrive.persons "
                 "where remote_id in (?, '100003') and extracted_at = (select max(extracted_at) "
                 "from raw_pipedrive.persons)", [str(person_id)])
    by_id = {r["remote_id"]: r for r in rows}
    assert json.loads(by_id[str(person_id)]["payload"])["name"] == "Grace Hopper"
    assert by_id["100003"]["is_deleted"] is True
    deal = query("select payload from raw_pipedrive.deals where remote_id = '300001' order by extracted_at desc")
    assert json.loads(deal[0]["payload"])["status"] == "won"


# The fault, kill and storm suites' row for this provider (tests/reliability/providers.py).
RELIABILITY = ProviderCase(
    own_truth("_assert_equals_truth"),
    {**{name: CRUD for name in ("persons", "organizations", "deals", "activities", "notes")},
     "leads": {"create": 2, "update": 4}}, scale=200)
