"""From the journal to canonical: events sent by the sandboxes (Greenhouse) or signed like the provider
(Pipedrive v2) are drained into raw and reach the canonical tables without a scheduled sync, deletes
included; a kill after the ack or mid-drain loses nothing and applies nothing twice; an out-of-order event
does not regress a record."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from canonry.pipeline import sync
from canonry.rollout.pause import pause, resume
from canonry.transform import run_dbt
from canonry.webhooks import drain as drain_module
from canonry.webhooks.journal import Journal
from tests.conftest import _close_dbt_duckdb_environment
from tests.helpers import canonical, clear_request_log, mutate, query, request_log, truth
from tests.pg import WAREHOUSES
from tests.webhooks.helpers import (
    WebhookServer,
    journal_rows,
    pipedrive_event,
    post_pipedrive,
    set_secret_env,
    wait_for,
    webhook_block,
)

GREENHOUSE_MODELS = ["+ats_candidates", "+ats_applications", "+ats_jobs"]


def _drain_cli(config) -> subprocess.CompletedProcess:
    """`canonry webhooks drain --no-build` (the test builds just the models it reads, as the source tests
    do: the drain's own build is `canonry sync`'s, the whole lineage of the provider)."""
    _close_dbt_duckdb_environment()  # dbt-duckdb keeps the warehouse open in this process
    return subprocess.run([sys.executable, "-m", "canonry.cli", "webhooks", "drain", "--no-build", "--config",
                           str(config)], capture_output=True, text=True, timeout=300)


def _build(models: list[str]) -> None:
    result = run_dbt(["build", "--select", *models, "--exclude-resource-type", "test"])
    assert result.success, (result.error, result.failures())


@pytest.fixture
def greenhouse(data_dir, sandbox_factory, connect_sandbox, monkeypatch):
    set_secret_env(monkeypatch)
    server = sandbox_factory("greenhouse", scale=50)
    env = "CANONRY_TEST_GREENHOUSE_ACME"
    connection = connect_sandbox(server, "greenhouse-acme", auth={"kind": "client_credentials", "secret": f"env:{env}"},
                                 webhooks=webhook_block("greenhouse"))
    return server, connection


def test_greenhouse_sandbox_deletes_reach_canonical_at_the_drain_not_the_daily_key_scan(greenhouse, tmp_path,
                                                                                          data_dir):
    sandbox, connection = greenhouse
    assert sync(connection).status == "success"
    intake = WebhookServer(tmp_path / "connections.yml").start()
    try:
        sandbox.state.webhook_url = intake.hook(connection.id)
        deleted = mutate(sandbox, "candidates", delete=2, seed=3)["delete"]
        deleted_jobs = mutate(sandbox, "jobs", delete=1, seed=3)["delete"]
        deliveries = sandbox.simulator.webhook_deliveries
        assert [d["status"] for d in deliveries] == [200, 200, 200]
        # The server dies right after its acks (SIGKILL): the events are in the journal all the same.
        intake.kill()
        assert [r["state"] for r in journal_rows(data_dir)] == ["pending"] * 3
    finally:
        intake.kill()

    clear_request_log(sandbox)
    # A paused object holds its events in the journal (pending, nothing lost); the others drain.
    pause(connection.id, ["jobs"], reason="jobs mapping under review")
    drained = _drain_cli(tmp_path / "connections.yml")
    assert drained.returncode == 0, drained.stderr
    assert "3 events: 2 applied, 0 dead-lettered, 1 waiting" in drained.stdout
    assert f"held by canonry pause (pending until `canonry resume`): {connection.id} 1 event(s)" in drained.stdout
    assert [r["state"] for r in journal_rows(data_dir)] == ["applied", "applied", "pending"]
    assert [(r["skipped_by"], r["reason"]) for r in query("select skipped_by, reason from ops.pause_skips")] == \
        [("canonry webhooks drain", "jobs mapping under review")]
    resume(connection.id)   # the next drain applies what the pause held
    result = drain_module.drain(_load(tmp_path), run_build=False)
    assert (result.events, result.applied, result.paused, result.errors) == (1, 1, {}, [])
    # No sync ran: the deletes came from the events alone (no API call at all).
    assert [r for r in request_log(sandbox) if r["path"].startswith("/v3/")] == []
    _build(GREENHOUSE_MODELS)
    candidates = canonical("ats_candidates", "greenhouse")
    applications = canonical("ats_applications", "greenhouse")
    jobs = canonical("ats_jobs", "greenhouse")
    gone_applications = {r["id"] for r in truth(sandbox, "applications") if r["deleted"]}
    assert gone_applications, "a deleted candidate takes its applications along"
    for remote_id in deleted:
        assert candidates[remote_id]["is_deleted"] and candidates[remote_id]["deleted_at"] is not None
    assert all(applications[i]["is_deleted"] for i in gone_applications)
    assert jobs[deleted_jobs[0]]["is_deleted"]
    alive = {r["id"] for r in truth(sandbox, "candidates") if not r["deleted"]}
    assert {k for k, v in candidates.items() if not v["is_deleted"]} == alive
    assert journal_rows(data_dir)[0]["drained_at"] is not None


def test_greenhouse_update_event_triggers_one_incremental_sync(greenhouse, tmp_path, data_dir):
    sandbox, connection = greenhouse
    assert sync(connection).status == "success"
    intake = WebhookServer(tmp_path / "connections.yml").start()
    try:
        sandbox.state.webhook_url = intake.hook(connection.id)
        updated = mutate(sandbox, "candidates", update=3, seed=5)["update"]
    finally:
        intake.stop()
    clear_request_log(sandbox)
    result = drain_module.drain(_load(tmp_path), run_build=False, batch_size=2)
    assert (result.events, result.applied, result.synced, result.errors) == (3, 3, {connection.id: "success"}, [])
    # Three events in two batches, one sync (debounced), which read only the changed records.
    candidate_calls = [r for r in request_log(sandbox) if r["path"] == "/v3/candidates"]
    assert len(candidate_calls) == 1
    raw_titles = {r["remote_id"]: r["title"] for r in query(
        "select remote_id, json_extract_string(payload, '$.title') as title from raw_greenhouse.candidates "
        "qualify row_number() over (partition by remote_id order by remote_updated_at desc) = 1")}
    truth_titles = {r["id"]: r["record"]["title"] for r in truth(sandbox, "candidates")}
    assert all(raw_titles[i] == truth_titles[i] for i in updated)



def _load(tmp_path):
    from canonry.validation import load_connections

    return load_connections(tmp_path / "connections.yml", require_tokens=False)


@pytest.mark.parametrize("warehouse", WAREHOUSES, indirect=True)
def test_pipedrive_events_exactly_once_across_a_kill_mid_drain_and_out_of_order(warehouse, data_dir, sandbox_factory,
                                                                                 connect_sandbox, tmp_path,
                                                                                 monkeypatch):
    set_secret_env(monkeypatch)
    sandbox = sandbox_factory("pipedrive", scale=20)
    connection = connect_sandbox(sandbox, "pipedrive-acme", webhooks=webhook_block("pipedrive"))
    assert sync(connection).status == "success"
    persons = {r["id"]: r["record"] for r in truth(sandbox, "persons")}
    intake = WebhookServer(tmp_path / "connections.yml").start()
    sandbox.state.webhook_url = intake.hook(connection.id)
    victims = mutate(sandbox, "persons", delete=2, seed=9)["delete"]   # the sandbox sends two v2 deletes
    sent = sandbox.simulator.webhooks.deliveries
    wait_for(lambda: len(sent) == 2 and all(d["status"] == 200 for d in sent))
    kept = next(i for i in persons if i not in victims)
    current = persons[kept]
    # An update event older than the version already in raw (delivered late, out of order).
    stale_time = (datetime.fromisoformat(current["update_time"].replace("Z", "+00:00")) - timedelta(days=3))
    stale = {**current, "name": "Stale Name", "update_time": stale_time.astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")}
    late = pipedrive_event("person", kept, "change", data=stale, previous=current)
    try:
        assert post_pipedrive(intake.hook(connection.id), late).status_code == 200
        intake.kill()
        intake = WebhookServer(tmp_path / "connections.yml").start()
        # Pipedrive retries the event (it never saw our ack, say): acknowledged, not journaled twice.
        retry = {**late, "meta": {**late["meta"], "attempt": 2}}
        assert post_pipedrive(intake.hook(connection.id), retry).status_code == 200
    finally:
        intake.stop()
    assert len(journal_rows(data_dir)) == 3

    # A drain dies after its warehouse commit, before the journal learns of it (as a SIGKILL there would).
    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-drain")
    with monkeypatch.context() as patch:
        patch.setattr(Journal, "mark", crash)
        with pytest.raises(KeyboardInterrupt):
            drain_module.drain(_load(tmp_path), run_syncs=False, run_build=False)
    assert [r["state"] for r in journal_rows(data_dir)] == ["pending"] * 3

    drained = _drain_cli(tmp_path / "connections.yml")
    assert drained.returncode == 0, drained.stderr
    assert "3 events: 3 applied" in drained.stdout
    _build(["+crm_contacts"])
    deleted_rows = query("select remote_id, count(*) as n from raw_pipedrive.persons where is_deleted "
                         "group by remote_id order by remote_id")
    assert deleted_rows == [{"remote_id": v, "n": 1} for v in sorted(victims)], "applied exactly once"
    assert query("select count(*) as n from ops.webhook_applied")[0]["n"] == 3
    contacts = canonical("crm_contacts", "pipedrive")
    for victim in victims:
        assert contacts[victim]["is_deleted"]
    assert not contacts[kept]["is_deleted"]
    assert "Stale" not in (contacts[kept]["last_name"] or "") + (contacts[kept]["first_name"] or "")
    # The drain again: nothing pending, nothing written.
    again = _drain_cli(tmp_path / "connections.yml")
    assert "0 events" in again.stdout
    assert query("select count(*) as n from raw_pipedrive.persons where is_deleted")[0]["n"] == 2
