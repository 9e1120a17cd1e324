"""A token revoked mid-run; replay from the raw layer; trace of a deleted-then-restored record;
idempotent re-delivery."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from canonry.cli import app
from canonry.errors import ErrorClass
from canonry.forensics import canonical_snapshot
from canonry.pipeline import sync, sync_many
from canonry.warehouse import connect
from tests.helpers import clear_request_log, mutate, query, request_log, set_faults, truth
from tests.pg import WAREHOUSES
from tests.reliability.providers import assert_equals_truth, build_canonical, rebuild_canonical

runner = CliRunner()


def _raw_digest(connection_id: str, load_ids: list[str]) -> list[tuple]:
    marks = ", ".join("?" for _ in load_ids)
    return [tuple(r.values()) for r in query(
        f"select _dlt_load_id, count(*) as n, sum(hash(payload)) as h from raw_hubspot.contacts "
        f"where connection_id = ? and _dlt_load_id in ({marks}) group by 1 order by 1", [connection_id, *load_ids])]


def test_token_revoked_mid_run_needs_reauth_and_other_connections_succeed(data_dir, sandbox_factory,
                                                                         connect_sandbox, monkeypatch):
    monkeypatch.setenv("CANONRY_CHECKPOINT_PAGES", "1")
    revoked_server = sandbox_factory("hubspot", scale=230, seed=1)
    healthy_server = sandbox_factory("hubspot", scale=150, seed=2)
    revoked = connect_sandbox(revoked_server, "hubspot-revoked")
    healthy = connect_sandbox(healthy_server, "hubspot-healthy")
    first = sync(revoked)
    assert first.status == "success", first.error
    before = _raw_digest(revoked.id, first.load_ids)

    for object_name in ("contacts", "companies", "deals"):
        mutate(revoked_server, object_name, update=150)
    set_faults(revoked_server, revoke_after=4)  # a few requests in, the token stops working
    results = {r.connection_id: r for r in sync_many([revoked, healthy])}

    bad, good = results[revoked.id], results[healthy.id]
    assert bad.error is not None and bad.error.error_class == ErrorClass.AUTH_EXPIRED
    assert bad.connection_state == "needs_reauth"
    assert bad.status in ("failed", "partial")
    assert good.status == "success" and good.records["contacts"] == 150
    # Data already loaded is untouched: every package of the first run is byte-for-byte still there.
    assert _raw_digest(revoked.id, first.load_ids) == before

    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    states = {r["connection_id"]: r for r in json.loads(status.output)}
    assert states[revoked.id]["state"] == "needs_reauth"
    assert "auth_expired" in states[revoked.id]["error_classes"]
    assert states[healthy.id]["state"] == "healthy" and states[healthy.id]["records"] > 150
    assert states[healthy.id]["last_success"] is not None and states[healthy.id]["freshness_s"] < 600
    # No retry of a dead credential: one 401 and the run stopped.
    unauthorized = [r for r in request_log(revoked_server) if r["status"] == 401]
    assert len(unauthorized) == 1


def test_a_concurrent_full_sync_stops_every_reader_at_one_401(data_dir, sandbox_factory,
                                                               connect_sandbox):
    """A first (full) sync reads its objects concurrently (how much faster: benchmarks/latency_budget.py); when the credential dies, the requests already on
    the wire get their answers (at most one per object read) and nothing more is sent."""
    server = sandbox_factory("hubspot", scale=400, seed=3)
    connection = connect_sandbox(server, "hubspot-concurrent",
                                 objects=["contacts", "companies", "deals", "owners", "pipelines"])
    set_faults(server, latency_ms=40, revoke_after=9)
    result = sync(connection)
    assert result.error is not None and result.error.error_class == ErrorClass.AUTH_EXPIRED
    assert result.connection_state == "needs_reauth"
    api = [r for r in request_log(server) if not r["path"].startswith("/_sandbox")]
    statuses = [r["status"] for r in api]
    # Stopped: at most 9 answered, then only the requests in flight with the first 401 (at most one per reader).
    assert statuses.count(200) <= 9 and 1 <= statuses.count(401) <= 5 and len(statuses) <= 14, statuses


@pytest.mark.parametrize("warehouse", WAREHOUSES, indirect=True)
def test_replay_rebuilds_identical_tables_without_api_calls_and_trace_shows_history(warehouse, sandbox_factory,
                                                                                  connect_sandbox):
    server = sandbox_factory("hubspot", scale=120)
    connection = connect_sandbox(server, "hubspot-replay")
    assert sync(connection).status == "success"
    record_id = truth(server, "contacts")[7]["id"]
    mutate(server, "contacts", delete=[record_id])
    deleted_run = sync(connection)
    assert deleted_run.status == "success" and deleted_run.records.get("contacts") == 1
    mutate(server, "contacts", restore=[record_id], update=3)
    restored_run = sync(connection)
    assert restored_run.status == "success"
    build_canonical("hubspot")
    assert_equals_truth(server, "hubspot", connection.id)

    conn = connect()
    try:
        expected = canonical_snapshot(conn, connection.id)
        staging_before = conn.execute("select count(*) from staging.stg_hubspot__contacts").fetchone()[0]
        conn.execute("drop schema canonical cascade")
        conn.execute("drop schema staging cascade")
    finally:
        conn.close()
    clear_request_log(server)

    replayed = runner.invoke(app, ["replay", connection.id, "--json"])
    assert replayed.exit_code == 0, replayed.output
    report = json.loads(replayed.output)
    assert report["success"] and report["tables"]["crm_contacts"]["added"] == 120
    assert [r for r in request_log(server) if not r["path"].startswith("/_sandbox")] == []  # zero API calls
    conn = connect()
    try:
        assert canonical_snapshot(conn, connection.id) == expected  # identical rows, lineage included
        assert conn.execute("select count(*) from staging.stg_hubspot__contacts").fetchone()[0] == staging_before
    finally:
        conn.close()

    # A replay over intact tables changes nothing; `--from` narrows the report to later loads.
    again = json.loads(runner.invoke(app, ["replay", connection.id, "--from", restored_run.load_ids[0],
                                           "--json"]).output)
    assert again["success"] and not again["changed"]
    assert again["tables"]["crm_contacts"]["unchanged"] == 4  # the restored record and the 3 updated ones

    traced = runner.invoke(app, ["trace", "hubspot", record_id, "--json"])
    assert traced.exit_code == 0, traced.output
    history = json.loads(traced.output)
    contacts = [v for v in history["versions"] if v["raw_table"] == "raw_hubspot.contacts"]
    assert [v["is_deleted"] for v in contacts] == [False, True, False]
    assert contacts[1]["load_id"] in deleted_run.load_ids and contacts[2]["load_id"] in restored_run.load_ids
    assert all(v["run_id"] for v in contacts)
    rows = [r for r in history["canonical"] if r["table"] == "canonical.crm_contacts"]
    assert len(rows) == 1 and rows[0]["is_deleted"] is False and rows[0]["_load_id"] == contacts[2]["load_id"]
    human = runner.invoke(app, ["trace", "hubspot", record_id])
    assert human.exit_code == 0 and "stored versions" in human.output


def test_rerunning_a_finished_load_or_replaying_pages_changes_nothing(data_dir, sandbox_factory, connect_sandbox):
    server = sandbox_factory("hubspot", scale=120)
    connection = connect_sandbox(server, "hubspot-idem")
    assert sync(connection).status == "success"
    build_canonical("hubspot")
    conn = connect()
    try:
        expected = canonical_snapshot(conn, connection.id, lineage=False)
    finally:
        conn.close()
    # The same pages delivered again (a full re-read appends every version a second time) and a re-run
    # with nothing new: canonical rows are identical (their content; `_load_id` / `last_synced_at` say
    # which load saw the record last).
    assert sync(connection, full_refresh=True).status == "success"
    assert sync(connection).status == "success"
    assert query("select count(*) as n from raw_hubspot.contacts")[0]["n"] == 240  # replayed pages are in raw
    rebuild_canonical("hubspot")
    conn = connect()
    try:
        assert canonical_snapshot(conn, connection.id, lineage=False) == expected
    finally:
        conn.close()
