"""Ashby end to end: sandbox over HTTP -> dlt -> raw_ashby -> dbt -> canonical ats_* tables."""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from canonry.errors import ErrorClass
from canonry.pipeline import sync
from canonry.sandbox.ashby.custom_fields import CUSTOM_FIELDS, RESOURCE_OBJECT_TYPE
from canonry.transform import build
from canonry.warehouse import dialect
from expectations.gate import run_gate, tables_fed_by
from sources.ashby.helpers import verify_webhook_signature
from sources.ashby.settings import OBJECTS
from tests.ats_truth import ashby_hired_at
from tests.helpers import canonical, clear_request_log, mutate, query, request_log, set_faults, truth
from tests.pg import WAREHOUSES
from tests.reliability.providers import ProviderCase, own_truth

SCALE = 230  # three pages of candidates, three of applications (287), two of interview schedules (115)
SYNCED = {"candidates": "candidate.list", "applications": "application.list", "jobs": "job.list",
          "interview_schedules": "interviewSchedule.list", "offers": "offer.list"}
WHOLE_LISTS = ("user.list", "department.list", "location.list", "archiveReason.list", "source.list",
               "interviewPlan.list", "customField.list")   # custom field definitions: opted in below
APPLICATION_STATUS = {"Active": "ACTIVE", "Hired": "HIRED", "Archived": "REJECTED", "Lead": "OTHER"}
JOB_STATUS = {"Open": "OPEN", "Closed": "CLOSED", "Draft": "DRAFT", "Archived": "ARCHIVED"}
INTERVIEW_STATUS = {"Scheduled": "SCHEDULED", "WaitingOnFeedback": "AWAITING_FEEDBACK", "Complete": "COMPLETE"}
OFFER_STATUS = {"WaitingOnApprovalStart": "DRAFT", "WaitingOnOfferApproval": "APPROVAL-SENT",
                "WaitingOnCandidateResponse": "SENT", "CandidateAccepted": "SIGNED", "CandidateRejected": "DENIED",
                "OfferCancelled": "DEPRECATED"}
EMAIL_TYPE = {"Personal": "PERSONAL", "Work": "WORK", "Other": "OTHER"}
PHONE_TYPE = {"Mobile": "MOBILE", "Personal": "HOME", "Work": "WORK", "Other": "OTHER"}


# dbt: the ATS marts and everything upstream of them (Ashby's staging, intermediate models, seeds, tests).
ATS_LINEAGE = ["+path:models/marts/ats"]


def cid(connection_id: str, remote_id: str | None) -> str | None:
    return hashlib.md5(f"{connection_id}:{remote_id}".encode()).hexdigest() if remote_id else None


def control(server, **body) -> dict:
    response = requests.post(f"{server.base_url}/_sandbox/ashby/control", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def api_log(server) -> list[dict]:
    """The sandbox's request log without its control calls."""
    return [r for r in request_log(server) if not r["path"].startswith("/_sandbox")]


def list_calls(log: list[dict], method: str) -> list[dict]:
    return [r for r in log if r["path"] == f"/{method}"]


def _assert_equals_truth(server, connection_id: str) -> None:
    """Every canonical ats_* table equals the sandbox's truth, field by field."""
    checks = {
        "candidates": ("ats_candidates", lambda rec, row: (
            (row["first_name"], row["last_name"]) == tuple((rec["name"].split(" ", 1) + [None])[:2])
            and row["title"] == rec["position"] and row["company"] == rec["company"]
            and json.loads(row["emails"]) == [{"value": e["value"], "type": EMAIL_TYPE[e["type"]]}
                                              for e in rec["emailAddresses"]]
            and json.loads(row["phones"]) == [{"value": p["value"], "type": PHONE_TYPE[p["type"]]}
                                              for p in rec["phoneNumbers"]]
            and json.loads(row["tags"]) == [t["title"] for t in rec["tags"]])),
        "applications": ("ats_applications", lambda rec, row: (
            row["status"] == APPLICATION_STATUS[rec["status"]]
            and row["candidate_id"] == cid(connection_id, rec["candidate"]["id"])
            and row["job_id"] == cid(connection_id, rec["job"]["id"])
            and row["current_stage_id"] == cid(connection_id, rec["currentInterviewStage"]["id"])
            and row["source"] == rec["source"]["title"]
            and row["reject_reason"] == ((rec.get("archiveReason") or {}).get("text")
                                         if rec["status"] == "Archived" else None)
            and (row["rejected_at"] is not None) == (rec["status"] == "Archived"))),
        "jobs": ("ats_jobs", lambda rec, row: (
            row["name"] == rec["title"] and row["status"] == JOB_STATUS[rec["status"]]
            and json.loads(row["department_ids"]) == [cid(connection_id, rec["departmentId"])]
            and json.loads(row["hiring_manager_ids"]) == [cid(connection_id, t["userId"]) for t in rec["hiringTeam"]
                                                         if t["role"] == "Hiring Manager"])),
        "interview_schedules": ("ats_interviews", lambda rec, row: (
            row["status"] == INTERVIEW_STATUS.get(rec["status"], "OTHER")
            and row["application_id"] == cid(connection_id, rec["applicationId"])
            and row["job_stage_id"] == cid(connection_id, rec["interviewStageId"])
            and row["location"] == rec["interviewEvents"][0]["location"]
            and sorted(json.loads(row["interviewer_user_ids"])) == sorted(
                {cid(connection_id, u) for e in rec["interviewEvents"] for u in e["interviewerUserIds"]}))),
        "offers": ("ats_offers", lambda rec, row: (
            row["status"] == OFFER_STATUS[rec["offerStatus"]]
            and row["application_id"] == cid(connection_id, rec["applicationId"])
            and row["creator_user_id"] == cid(connection_id, rec["latestVersion"]["author"]["id"])
            and str(row["start_date"]) == rec["latestVersion"]["startDate"])),
        "users": ("ats_users", lambda rec, row: (
            row["email"] == rec["email"] and row["last_name"] == rec["lastName"]
            and row["is_disabled"] == (not rec["isEnabled"]))),
        "departments": ("ats_departments", lambda rec, row: (
            row["name"] == rec["name"] and row["parent_department_id"] == cid(connection_id, rec["parentId"]))),
        "locations": ("ats_offices", lambda rec, row: row["name"] == rec["name"]),
        "interview_stages": ("ats_job_stages", lambda rec, row: (
            row["name"] == rec["title"] and row["stage_order"] == rec["orderInInterviewPlan"]
            and row["job_id"] is None)),
    }
    for object_name, (table, same) in checks.items():
        expected = {r["id"]: r for r in truth(server, object_name)}
        rows = canonical(table, "ashby")
        assert set(rows) == set(expected), f"{table}: ids differ from the sandbox's {object_name}"
        id_column = table.split("_", 1)[1][:-1] + "_id" if table != "ats_job_stages" else "job_stage_id"
        for remote_id, item in expected.items():
            row = rows[remote_id]
            assert row[id_column] == cid(connection_id, remote_id)
            assert row["is_deleted"] == item["deleted"], f"{table} {remote_id}: is_deleted"
            assert (row["deleted_at"] is not None) == item["deleted"], f"{table} {remote_id}: deleted_at"
            if object_name != "candidates" or not item["deleted"]:
                assert same(item["record"], row), f"{table} {remote_id}: fields differ from {item['record']}"
            assert row["tenant_id"] == "acme"
        counts = query(f"select count(*) as n, count(distinct {id_column}) as d from canonical.{table} "
                       "where provider = 'ashby'")[0]
        assert counts["n"] == counts["d"], f"{table} has duplicate ids"
    offers = [o["record"] for o in truth(server, "offers") if not o["deleted"]]
    rows = canonical("ats_applications", "ashby")
    for item in (a for a in truth(server, "applications") if not a["deleted"]):
        assert rows[item["id"]]["hired_at"] == ashby_hired_at(item["record"], offers), item["id"]


CANONICAL_KIND = {"String": "text", "Number": "number", "Date": "date", "ValueSelect": "enum",
                  "MultiValueSelect": "multi_select", "CompensationRange": "currency_range", "Boolean": "text"}
CUSTOM_TABLES = {"candidates": "ats_candidates", "applications": "ats_applications", "jobs": "ats_jobs"}


def _expected_custom_value(definition: dict, value):
    labels = {o["value"]: o["label"] for o in definition["selectableValues"]}
    if definition["fieldType"] == "ValueSelect":
        return labels[value]
    if definition["fieldType"] == "MultiValueSelect":
        return [labels[v] for v in value]
    if definition["fieldType"] == "CompensationRange":
        return {"min": value["minValue"], "max": value["maxValue"], "currency": value["currencyCode"],
                "interval": value["interval"]}
    return value


def _assert_custom_fields(server, first_titles: dict[str, str]) -> None:
    """Every custom field value of the sandbox is in canonical `custom_fields`, named by the snake_case of
    the title first loaded (`first_titles`: id -> title), with its canonical type and Ashby id."""
    definitions = {d["id"]: d for d in server.simulator.custom.definitions}
    for resource, table in CUSTOM_TABLES.items():
        rows = canonical(table, "ashby")
        kinds = set()
        for record in truth(server, resource):
            if record["id"] not in rows:
                continue
            expected = {}
            for field in record["record"]["customFields"]:
                definition = definitions[field["id"]]
                name = first_titles[field["id"]].lower().replace(" ", "_").replace("-", "_")
                expected[name] = {"value": _expected_custom_value(definition, field["value"]),
                                  "type": CANONICAL_KIND[definition["fieldType"]], "remote_key": field["id"]}
                kinds.add(definition["fieldType"])
            got = rows[record["id"]]["custom_fields"]
            assert (got if isinstance(got, dict) else json.loads(got)) == expected, (table, record["id"])
        assert kinds == {t for _, t, _ in CUSTOM_FIELDS[RESOURCE_OBJECT_TYPE[resource]]}, (table, kinds)


def _assert_foreign_keys_resolve() -> None:
    for child, column, parent, key in (
        ("ats_applications", "candidate_id", "ats_candidates", "candidate_id"),
        ("ats_applications", "job_id", "ats_jobs", "job_id"),
        ("ats_applications", "current_stage_id", "ats_job_stages", "job_stage_id"),
        ("ats_applications", "credited_to_user_id", "ats_users", "user_id"),
        ("ats_interviews", "application_id", "ats_applications", "application_id"),
        ("ats_interviews", "job_stage_id", "ats_job_stages", "job_stage_id"),
        ("ats_offers", "application_id", "ats_applications", "application_id"),
        ("ats_offers", "creator_user_id", "ats_users", "user_id"),
        ("ats_departments", "parent_department_id", "ats_departments", "department_id"),
    ):
        dangling = query(f"""
            select count(*) as n from canonical.{child} x
            left join canonical.{parent} p on p.{key} = x.{column}
            where x.provider = 'ashby' and x.{column} is not null and p.{key} is null""")[0]["n"]
        assert dangling == 0, f"{child}.{column} has {dangling} ids missing from {parent}"
    elements = {"duckdb": "unnest(cast(json_extract_string({column}, '$[*]') as varchar[]))",
                "postgres": "jsonb_array_elements_text({column})"}[dialect()]
    for column, parent, key in (("interviewer_user_ids", "ats_users", "user_id"),):
        dangling = query(f"""
            select count(*) as n from (select {elements.format(column=column)} as ref
                                       from canonical.ats_interviews where provider = 'ashby') x
            left join canonical.{parent} p on p.{key} = x.ref where p.{key} is null""")[0]["n"]
        assert dangling == 0


@pytest.mark.parametrize("warehouse", WAREHOUSES, indirect=True)
def test_full_then_incremental_equals_sandbox_truth(warehouse, sandbox_factory, connect_sandbox):
    # Custom fields of Ashby's field types on candidates, applications, jobs (opt-in object custom_fields).
    server = sandbox_factory("ashby", scale=SCALE, custom_fields=True)
    connection = connect_sandbox(server, "ashby-acme", objects=list(OBJECTS))
    titles = {d["id"]: d["title"] for d in server.simulator.custom.definitions}

    first = sync(connection)
    assert first.status == "success", first.error
    assert first.records["candidates"] == SCALE
    assert first.records["custom_fields"] == len(titles)
    # API efficiency of a full sync: ceil(N / 100) list calls per object, every one at limit=100.
    log = api_log(server)
    sizes = server.simulator.sizes
    for object_name, method in SYNCED.items():
        calls = list_calls(log, method)
        assert len(calls) == math.ceil(sizes[object_name] / 100), method
        assert all(r["status"] == 200 for r in calls)
    for method in WHOLE_LISTS:
        assert len(list_calls(log, method)) == 1, method
    assert len(list_calls(log, "interviewStage.list")) == sizes["interview_plans"]
    full_calls = len(log)

    assert build(ATS_LINEAGE).success
    _assert_equals_truth(server, connection.id)
    _assert_foreign_keys_resolve()
    _assert_custom_fields(server, titles)
    # A custom field retitled at Ashby: its canonical key (the first title's snake_case) stays.
    seniority = next(i for i, t in titles.items() if t == "Seniority")
    retitled = requests.post(f"{server.base_url}/_sandbox/ashby/custom_fields",
                             json={"id": seniority, "title": "Career level"}, timeout=10)
    assert retitled.status_code == 200, retitled.text

    # Creates, updates, archival and status changes between syncs -> incremental sync -> equals truth.
    changes = {
        "candidates": {"create": 4, "update": 6},
        "applications": {"create": 5, "update": 6, "delete": 5},        # delete = archive (REJECTED)
        "jobs": {"create": 1, "update": 2, "delete": 2},                # delete = status Archived
        "interview_schedules": {"create": 3, "update": 4, "delete": 3},  # delete = Cancelled -> deleted
        "offers": {"create": 2, "update": 3, "delete": 2},               # delete = OfferCancelled
        "users": {"update": 1, "delete": 1},                            # delete = deactivated
        "departments": {"update": 1, "delete": 1},                      # delete = isArchived -> deleted
        "locations": {"delete": 1},
        "interview_stages": {"update": 1},
    }
    changed = {name: mutate(server, name, **actions) for name, actions in changes.items()}
    archived = changed["applications"]["delete"]
    clear_request_log(server)
    second = sync(connection)
    assert second.status == "success", second.error
    assert second.records["candidates"] == 10
    assert second.records["custom_fields"] == 1      # only the retitled definition is written again

    # The incremental run read only what changed: one page per sync-token object (every change fits
    # one page), sent with the stored token; the small whole lists are read once, as on every run.
    log = api_log(server)
    for method in SYNCED.values():
        calls = list_calls(log, method)
        assert len(calls) == 1, method
    assert len(log) == len(SYNCED) + len(WHOLE_LISTS) + sizes["interview_plans"]
    assert len(log) < full_calls
    assert query("select count(*) as n from raw_ashby.full_passes")[0]["n"] == len(SYNCED)  # no new full pass

    assert build(ATS_LINEAGE).success
    _assert_equals_truth(server, connection.id)
    _assert_foreign_keys_resolve()
    _assert_custom_fields(server, titles)
    assert query("select label, field_name from staging.stg_ashby__custom_fields where remote_key = ?",
                 [seniority]) == [{"label": "Career level", "field_name": "seniority"}]
    # The Great Expectations gate passes on every table Ashby feeds.
    gate = run_gate(tables_fed_by(["ashby"]))
    assert set(gate.tables()) == set(tables_fed_by(["ashby"])) and len(gate.tables()) == 9
    assert gate.success, [(c.table, c.expectation, c.column, c.observed) for c in gate.failed()]
    statuses = {r["remote_id"]: r for r in query(
        "select remote_id, status, rejected_at, is_deleted from canonical.ats_applications")}
    assert all(statuses[i]["status"] == "REJECTED" and not statuses[i]["is_deleted"] for i in archived)


def test_refused_sync_tokens_fall_back_to_full_passes(data_dir, sandbox_factory, connect_sandbox):
    """Expired token, too many changes, hard deletes: full passes run automatically, tables equal truth."""
    server = sandbox_factory("ashby", scale=150)
    connection = connect_sandbox(server, "ashby-fallback")
    assert sync(connection).status == "success"

    # GDPR-deleted candidates vanish from Ashby; the tokens expire before the next run.
    deleted = mutate(server, "candidates", delete=4, update=3)["delete"]
    mutate(server, "applications", update=2)
    assert control(server, expire_sync_tokens=True)["expired"] >= len(SYNCED)
    clear_request_log(server)
    result = sync(connection)
    assert result.status == "success", result.error
    passes = query("select remote_id, payload from raw_ashby.full_passes order by extracted_at")
    reasons = {p["remote_id"]: json.loads(p["payload"])["reason"] for p in passes[len(SYNCED):]}
    assert reasons == dict.fromkeys(SYNCED, "sync_token_expired")
    log = api_log(server)
    refused = [r for r in log if r["path"] == "/candidate.list"]
    assert len(refused) == 1 + math.ceil((150 - 4) / 100)  # the refused call, then a full pass

    # Too many changes for one incremental pass: discard the token, full pass.
    control(server, incremental_page_cap=1)
    mutate(server, "candidates", update=120)
    result = sync(connection)
    assert result.status == "success", result.error
    last = query("select payload from raw_ashby.full_passes where remote_id = 'candidates' "
                 "order by extracted_at desc limit 1")[0]
    assert json.loads(last["payload"])["reason"] == "incremental_sync_too_large"

    assert build(ATS_LINEAGE).success
    _assert_equals_truth(server, connection.id)
    gone = query("select remote_id, deleted_at from canonical.ats_candidates where is_deleted")
    assert {r["remote_id"] for r in gone} == set(deleted)
    assert all(r["deleted_at"] is not None for r in gone)

    # The next incremental run uses the new token again: one call per sync-token object.
    clear_request_log(server)
    assert sync(connection).status == "success"
    log = api_log(server)
    assert all(len(list_calls(log, m)) == 1 for m in SYNCED.values())


def test_success_false_and_auth_errors_are_clear(data_dir, sandbox_factory, connect_sandbox):
    server = sandbox_factory("ashby", scale=60)
    connection = connect_sandbox(server, "ashby-errors", objects=["candidates", "offers"])
    assert sync(connection).status == "success"
    before = query("select count(*) as n from raw_ashby.candidates")[0]["n"]

    control(server, logic_errors={"offer.list": "unexpected_server_state"})
    result = sync(connection)
    assert result.status == "failed"
    assert result.error.error_class == ErrorClass.PROVIDER_CONTRACT
    message = str(result.error)
    assert "`unexpected_server_state`" in message and "success:false" in message
    assert "provider=ashby" in message and "endpoint=/offer.list" in message and "What to do" in message
    # A failed run loads nothing and keeps the stored tokens.
    assert query("select count(*) as n from raw_ashby.candidates")[0]["n"] == before
    assert query("select error_class from ops.sync_errors")[-1]["error_class"] == "provider_contract"

    control(server, logic_errors={}, missing_permissions=["offer.list"])
    result = sync(connection)
    assert result.error.error_class == ErrorClass.PERMISSION_DENIED
    assert "missing_endpoint_permission" in str(result.error)
    control(server, missing_permissions=[])

    wrong = connect_sandbox(server, "ashby-wrong-key", token="not-a-key", objects=["candidates"])
    result = sync(wrong)
    assert result.error.error_class == ErrorClass.PERMISSION_DENIED and result.error.status == 403
    missing = requests.post(f"{server.base_url}/candidate.list", json={}, timeout=10)
    assert missing.status_code == 401 and missing.json()["success"] is False

    # Rate limiting: 429 + Retry-After is retried, the run succeeds.
    set_faults(server, storm_429=2)
    result = sync(connection)
    assert result.status == "success", result.error
    assert result.throttled == 2


def test_webhooks_are_signed(data_dir, sandbox_factory):
    received: list[tuple[bytes, str | None]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers.get("Ashby-Signature")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        server = sandbox_factory("ashby", scale=20)
        secret = "whsec-test-123456"
        control(server, webhook_url=f"http://127.0.0.1:{httpd.server_port}/hooks/ashby", webhook_secret=secret)
        ids = mutate(server, "applications", create=1, delete=1)
        deadline = time.monotonic() + 10
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        httpd.shutdown()
    assert len(received) == 2
    actions = set()
    for body, signature in received:
        assert signature and signature.startswith("sha256=")
        assert verify_webhook_signature(secret, body, signature)
        assert not verify_webhook_signature("another-secret", body, signature)
        payload = json.loads(body)
        actions.add(payload["action"])
        assert payload["data"]["application"]["id"] in ids["create"] + ids["delete"]
    assert actions == {"applicationSubmit", "applicationUpdate"}
    assert not verify_webhook_signature(secret, received[0][0] + b" ", received[0][1])
    assert not verify_webhook_signature(secret, received[0][0], None)


def test_million_record_sandbox_costs_no_memory(sandbox_factory):
    import tracemalloc

    tracemalloc.start()
    server = sandbox_factory("ashby", scale=1_000_000, rate_limits=False)
    auth = ("sandbox-ashby-api-key", "")
    first = requests.post(f"{server.base_url}/candidate.list", json={"limit": 100}, auth=auth, timeout=10).json()
    second = requests.post(f"{server.base_url}/candidate.list", json={"limit": 100, "cursor": first["nextCursor"]},
                           auth=auth, timeout=10).json()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(first["results"]) == len(second["results"]) == 100 and second["moreDataAvailable"]
    assert {r["id"] for r in first["results"]}.isdisjoint(r["id"] for r in second["results"])
    assert server.simulator.collections["candidates"].size == 1_000_000
    assert all(not c.changes for c in server.simulator.collections.values())
    assert peak < 20 * 1024 * 1024


# The fault, kill and storm suites' row for this provider (tests/reliability/providers.py).
RELIABILITY = ProviderCase(
    own_truth("_assert_equals_truth", with_connection=True),
    {"candidates": {"create": 3, "update": 5}, "applications": {"create": 3, "update": 4, "delete": 2},
     "offers": {"create": 2, "update": 3, "delete": 2}}, scale=230)
