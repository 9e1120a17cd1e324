"""Workable end to end: sandbox over HTTP (bearer token, 10 requests per 10 s) -> dlt -> raw_workable -> dbt
-> canonical ats_* tables, compared with the sandbox's truth row by row.

One world for the whole provider: a full sync, changes in every mutable object, an incremental sync and ONE
dbt build; the small error cases read one object each (Workable's account-token limit makes every call count).
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from datetime import UTC, datetime

import pytest
import requests

from canonry.errors import ConfigError, ErrorClass
from canonry.http_budget import RetryPolicy
from canonry.pipeline import sync
from canonry.sandbox import DEFAULT_TOKENS
from canonry.sandbox.workable import STAGES, shortcode
from canonry.transform import build
from expectations.gate import run_gate, tables_fed_by
from tests.ats_truth import time_to_hire_query, workable_hires
from tests.helpers import canonical, clear_request_log, lineage, mutate, query, request_log, set_faults, truth
from tests.reliability.providers import ProviderCase, own_truth

SCALE = 150          # two candidate pages at limit=100; 15 jobs, 7 members, 75 events: one page each
CONNECTION = "workable-acme"
LISTS = ("/spi/v3/candidates", "/spi/v3/jobs", "/spi/v3/members", "/spi/v3/events", "/spi/v3/stages",
         "/spi/v3/departments")
JOB_STATUS = {"published": "OPEN", "draft": "DRAFT", "closed": "CLOSED", "archived": "ARCHIVED"}
ACCESS_ROLE = {"admin": "ADMIN", "simple": "TEAM_MEMBER", "reviewer": "INTERVIEWER"}
CHANGES = {
    "candidates": {"create": 3, "update": 5, "delete": 2},   # delete = disqualify (REJECTED, not deleted)
    "jobs": {"create": 1, "update": 2, "delete": 1},          # delete = archive (ARCHIVED)
    "events": {"create": 2, "update": 2, "delete": 2},        # delete = cancel (a deleted interview)
    "members": {"update": 1, "delete": 1},                    # delete = deactivate (is_disabled)
}


def cid(connection_id: str, remote_id: str | None) -> str | None:
    return hashlib.md5(f"{connection_id}:{remote_id}".encode()).hexdigest() if remote_id else None


def api_log(server) -> list[dict]:
    return [r for r in request_log(server) if not r["path"].startswith("/_sandbox")]


def _typed(value: str | None) -> list[dict]:
    return [{"value": value, "type": "OTHER"}] if value else []


def assert_equals_truth(server, connection_id: str) -> None:
    """Every canonical table Workable feeds equals the sandbox's truth, field by field; foreign keys resolve."""
    c = lambda remote_id: cid(connection_id, remote_id)  # noqa: E731
    candidates = truth(server, "candidates")
    jobs = {r["record"]["shortcode"]: r for r in truth(server, "jobs")}
    interviews = [e for e in truth(server, "events") if e["record"]["type"] == "interview"]
    checks = {
        "ats_candidates": ({r["id"]: r for r in candidates}, lambda rec, row: (
            row["first_name"] == rec["firstname"] and row["last_name"] == rec["lastname"]
            and row["title"] == rec["headline"] and json.loads(row["emails"]) == _typed(rec["email"])
            and json.loads(row["phones"]) == _typed(rec["phone"])
            and json.loads(row["locations"]) == ([rec["address"]] if rec["address"] else []))),
        "ats_applications": ({r["id"]: r for r in candidates}, lambda rec, row: (
            row["candidate_id"] == row["application_id"] == c(rec["id"])
            and row["job_id"] == c(rec["job"]["shortcode"]) and row["current_stage_id"] == c(rec["stage"])
            and row["status"] == ("HIRED" if rec["stage_kind"] == "hired" else
                                  "REJECTED" if rec["disqualified"] else "ACTIVE")
            and row["reject_reason"] == (rec["disqualification_reason"] if row["status"] == "REJECTED" else None)
            and (row["rejected_at"] is not None) == (row["status"] == "REJECTED")
            and (row["hired_at"].date().isoformat() if row["hired_at"] else None) == rec["hired_at"]
            and row["source"] == rec["domain"])),
        "ats_jobs": (jobs, lambda rec, row: (
            row["name"] == rec["title"] and row["code"] == rec["code"] and row["status"] == JOB_STATUS[rec["state"]]
            and json.loads(row["department_ids"]) == [c(rec["department_hierarchy"][-1]["id"])]
            and json.loads(row["office_ids"]) == [c("location:" + rec["location"]["location_str"])])),
        "ats_job_stages": ({r["id"]: r for r in truth(server, "stages")}, lambda rec, row: (
            row["name"] == rec["name"] and row["stage_order"] == rec["position"] and row["job_id"] is None)),
        "ats_interviews": ({r["id"]: r for r in interviews}, lambda rec, row: (
            row["application_id"] == c(rec["candidate"]["id"])
            and json.loads(row["interviewer_user_ids"]) == [c(m["id"]) for m in rec["members"]]
            and row["start_at"] == datetime.fromisoformat(rec["starts_at"])
            and row["status"] == ("SCHEDULED" if row["start_at"] > datetime.now(UTC) else "COMPLETE"))),
        "ats_departments": ({r["id"]: r for r in truth(server, "departments")}, lambda rec, row: (
            row["name"] == rec["name"] and row["parent_department_id"] == c(rec["parent_id"]))),
        "ats_users": ({r["id"]: r for r in truth(server, "members")}, lambda rec, row: (
            f"{row['first_name']} {row['last_name']}" == rec["name"] and row["email"] == rec["email"]
            and row["is_disabled"] == (not rec["active"]) and row["access_role"] == ACCESS_ROLE[rec["role"]])),
    }
    for table, (expected, same) in checks.items():
        rows = canonical(table, "workable")
        assert set(rows) == set(expected), f"{table}: ids differ from the sandbox's truth"
        id_column = table.split("_", 1)[1][:-1] + "_id"
        for remote_id, item in expected.items():
            row = rows[remote_id]
            assert row[id_column] == c(remote_id) and row["tenant_id"] == "acme"
            assert row["is_deleted"] == item["deleted"], f"{table} {remote_id}: is_deleted"
            assert (row["deleted_at"] is not None) == item["deleted"], f"{table} {remote_id}: deleted_at"
            assert same(item["record"], row), f"{table} {remote_id}: fields differ from {item['record']}"
    offices = canonical("ats_offices", "workable")
    assert set(offices) == {"location:" + j["record"]["location"]["location_str"] for j in jobs.values()}


def assert_foreign_keys_resolve() -> None:
    for child, column, parent, key in (
        ("ats_applications", "candidate_id", "ats_candidates", "candidate_id"),
        ("ats_applications", "job_id", "ats_jobs", "job_id"),
        ("ats_applications", "current_stage_id", "ats_job_stages", "job_stage_id"),
        ("ats_interviews", "application_id", "ats_applications", "application_id"),
        ("ats_departments", "parent_department_id", "ats_departments", "department_id"),
    ):
        dangling = query(f"""
            select count(*) as n from canonical.{child} x left join canonical.{parent} p on p.{key} = x.{column}
            where x.provider = 'workable' and x.{column} is not null and p.{key} is null""")[0]["n"]
        assert dangling == 0, f"{child}.{column} has {dangling} ids missing from {parent}"
    for column, table, parent, key in (("interviewer_user_ids", "ats_interviews", "ats_users", "user_id"),
                                       ("department_ids", "ats_jobs", "ats_departments", "department_id"),
                                       ("office_ids", "ats_jobs", "ats_offices", "office_id")):
        dangling = query(f"""
            select count(*) as n from (
                select unnest(cast(json_extract_string({column}, '$[*]') as varchar[])) as ref
                from canonical.{table} where provider = 'workable') x
            left join canonical.{parent} p on p.{key} = x.ref where p.{key} is null""")[0]["n"]
        assert dangling == 0, f"{table}.{column}: {dangling} ids missing from {parent}"


def test_full_then_incremental_equals_sandbox_truth(data_dir, sandbox_factory, connect_sandbox):
    server = sandbox_factory("workable", scale=SCALE)
    connection = connect_sandbox(server, CONNECTION)

    first = sync(connection)
    assert first.status == "success", first.error
    assert first.records["candidates"] == SCALE
    # API efficiency: ceil(N / 100) candidate pages at limit=100 (the second is paging.next, by since_id),
    # one call for every other list; every call answered 200 under the 10-per-10-s limit.
    log = api_log(server)
    candidate_calls = [r for r in log if r["path"] == LISTS[0]]
    assert len(candidate_calls) == math.ceil(SCALE / 100)
    assert all("limit=100" in r["query"] for r in candidate_calls) and "since_id=" in candidate_calls[1]["query"]
    assert sorted(r["path"] for r in log) == sorted([LISTS[0]] * len(candidate_calls) + list(LISTS[1:]))
    assert all(r["status"] == 200 for r in log)
    assert "type=interview" in next(r["query"] for r in log if r["path"] == "/spi/v3/events")

    changed = {name: mutate(server, name, **actions) for name, actions in CHANGES.items()}
    clear_request_log(server)
    second = sync(connection)
    assert second.status == "success", second.error
    # The incremental run: one `updated_after` call for candidates bringing exactly the changed ones
    # (boundary duplicates dropped), one call per small list; nothing else.
    touched = {i for ids in changed["candidates"].values() for i in ids}
    assert second.records["candidates"] == len(touched)
    log = api_log(server)
    assert sorted(r["path"] for r in log) == sorted(LISTS)
    assert "updated_after=" in next(r["query"] for r in log if r["path"] == LISTS[0])

    assert build(lineage("workable")).success
    assert_equals_truth(server, connection.id)
    assert_foreign_keys_resolve()
    applications = canonical("ats_applications", "workable")
    assert all(applications[i]["status"] == "REJECTED" for i in changed["candidates"]["delete"])
    archived = canonical("ats_jobs", "workable")
    assert all(archived[shortcode(int(i[1:], 16))]["status"] == "ARCHIVED" for i in changed["jobs"]["delete"])
    # The analyst guide's time-to-hire query answers for Workable what its truth says.
    expected: dict[str, list[float]] = {}
    for department, applied, hired in workable_hires(server):
        expected.setdefault(department, []).append((hired - applied).total_seconds() / 86400)
    rows = [r for r in query(time_to_hire_query()) if r["provider"] == "workable"]
    assert expected and {r["department"]: r["hires"] for r in rows} == {d: len(v) for d, v in expected.items()}
    assert all(abs(float(r["median_days_to_hire"]) - statistics.median(expected[r["department"]])) <= 0.05 + 1e-9
               for r in rows)
    # The Great Expectations gate passes on every table Workable feeds.
    tables = tables_fed_by(["workable"])
    gate = run_gate(tables)
    assert set(gate.tables()) == set(tables) and len(tables) == 8
    assert gate.success, [(f.table, f.expectation, f.column, f.observed) for f in gate.failed()]


def test_rate_limit_and_errors_are_clear(data_dir, sandbox_factory, connect_sandbox):
    """429 (with the X-Rate-Limit-* headers) is waited out; 5xx is retried, then fails the run as transient with
    nothing loaded; a revoked token fails it as an authorisation problem; a connection without its account
    host is a configuration error of the connections file."""
    server = sandbox_factory("workable", scale=20)
    answer = requests.get(f"{server.base_url}/spi/v3/stages", timeout=10,
                          headers={"Authorization": f"Bearer {DEFAULT_TOKENS['workable']}"})
    assert answer.headers["X-Rate-Limit-Limit"] == "10" and answer.headers["X-Rate-Limit-Remaining"] == "9"
    assert int(answer.headers["X-Rate-Limit-Reset"]) >= int(datetime.now(UTC).timestamp())
    assert requests.get(f"{server.base_url}/spi/v3/stages", timeout=10).json() == {"error": "Not authorized"}
    connection = connect_sandbox(server, "workable-errors", objects=["stages"])

    set_faults(server, storm_429=2)
    result = sync(connection)
    assert result.status == "success", result.error
    assert result.throttled == 2
    set_faults(server, storm_429=0, error_rate=1.0)   # every answer a 5xx: retried, then a transient failure
    result = sync(connection, on_start=lambda runtime: setattr(runtime, "retry", RetryPolicy(
        max_attempts=2, base_delay=0.01, max_delay=0.05)))
    assert result.status == "failed" and result.error.error_class == ErrorClass.TRANSIENT
    assert "gave up after 2 attempts" in str(result.error) and "endpoint=" in str(result.error)
    set_faults(server, error_rate=0.0)

    stages = len(STAGES)
    assert query("select count(*) as n from raw_workable.stages")[0]["n"] == stages

    set_faults(server, revoke_after=0)
    result = sync(connection)
    assert result.status == "failed"
    assert result.error.error_class == ErrorClass.AUTH_EXPIRED, result.error
    assert "provider=workable" in str(result.error) and DEFAULT_TOKENS["workable"] not in str(result.error)
    assert query("select count(*) as n from raw_workable.stages")[0]["n"] == stages   # nothing half-loaded

    # A connection without its account host does not get past the connections file (`canonry validate`).
    with pytest.raises(ConfigError) as refused:
        connect_sandbox(server, "workable-no-host", base_url=None, objects=["stages"])
    assert "[base_url_required]" in str(refused.value) and "https://<subdomain>.workable.com" in str(refused.value)


@pytest.mark.parametrize("limit", ["0", "ten"])
def test_sandbox_refuses_bad_paging(sandbox_factory, limit):
    server = sandbox_factory("workable", scale=5, rate_limits=False)
    answer = requests.get(f"{server.base_url}/spi/v3/candidates", params={"limit": limit}, timeout=10,
                          headers={"Authorization": f"Bearer {DEFAULT_TOKENS['workable']}"})
    assert answer.status_code == 400 and "limit must be a positive integer" in answer.json()["error"]


# The fault, kill and storm suites' row for this provider (tests/reliability/providers.py).
RELIABILITY = ProviderCase(own_truth("assert_equals_truth", with_connection=True),
                           {name: actions for name, actions in CHANGES.items() if name != "jobs"}, scale=150,
                           connection_id=CONNECTION)
