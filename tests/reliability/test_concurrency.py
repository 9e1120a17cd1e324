"""Concurrency and run integrity on the embedded DuckDB warehouse, through the CLI on a fresh data dir:
two `canonry sync` at once both succeed (one waits for the warehouse writer lock, saying for whom), a
busy warehouse past `--wait` is one clear error, and a SIGKILLed sync is recorded `killed` with its last
checkpoint, shown by `canonry status`, and its next run re-fetches at most one checkpoint's pages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from urllib.parse import parse_qsl

from canonry.warehouse import PROJECT_ROOT, writer_lock
from tests.helpers import query, request_log, set_faults


def _cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "canonry.cli", *args], env=environment, cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen, timeout: float = 300) -> str:
    output, _ = process.communicate(timeout=timeout)
    return output


def test_two_concurrent_syncs_both_succeed_one_waiting_for_the_lock(data_dir, tmp_path, sandbox_factory,
                                                                    connect_sandbox):
    hubspot = connect_sandbox(sandbox_factory("hubspot", scale=300), "hubspot-a")
    pipedrive = connect_sandbox(sandbox_factory("pipedrive", scale=150), "pipedrive-b")
    config = str(tmp_path / "connections.yml")
    # One page per checkpoint: dozens of loads each, so the two syncs' loads meet.
    env = {"CANONRY_CHECKPOINT_PAGES": "1"}
    with writer_lock("an analyst's session"):
        # Both start while the warehouse is held: each waits at its first write (the run's `running` row)
        # and says so first; the lock is released once both said it.
        first = _cli("sync", "--config", config, "-c", hubspot.id, env=env)
        second = _cli("sync", "--config", config, "-c", pipedrive.id, env=env)
        said = [first.stdout.readline(), second.stdout.readline()]
    outputs = [said[0] + _finish(first), said[1] + _finish(second)]
    for process, output in zip((first, second), outputs, strict=True):
        assert process.returncode == 0, output
        assert "Traceback" not in output and "Could not set lock" not in output, output
        assert "waiting for the warehouse lock held by an analyst's session (pid " in output, output
    # ... and then for each other's steps (a load, the dbt build, the gate), named.
    assert any("waiting for the warehouse lock held by sync of" in o or "held by dbt build" in o
               or "held by validation gate" in o for o in outputs), outputs
    runs = query("select connection_id, status, checkpoints from ops.sync_runs order by connection_id")
    assert [(r["connection_id"], r["status"]) for r in runs] == [("hubspot-a", "success"), ("pipedrive-b", "success")]
    assert runs[0]["checkpoints"] >= 2 and runs[1]["checkpoints"] >= 1  # HubSpot checkpoints per page here


def test_a_warehouse_busy_past_wait_is_one_clear_error(data_dir, tmp_path, sandbox_factory, connect_sandbox):
    connection = connect_sandbox(sandbox_factory("hubspot", scale=50), "hubspot-busy")
    with writer_lock("a dbt build in another terminal"):
        started = time.monotonic()
        process = _cli("sync", "--config", str(tmp_path / "connections.yml"), "-c", connection.id, "--wait", "2")
        output = _finish(process, timeout=60)
        waited = time.monotonic() - started
    assert process.returncode == 1, output
    assert "Traceback" not in output and "IOException" not in output, output
    assert "held by a dbt build in another terminal (pid " in output and "--wait" in output, output
    assert "[transient]" in output and "is busy" in output, output
    assert waited < 30


def _object_pages(server) -> list[tuple[str, tuple]]:
    """The CRM object list pages requested (path and query, order kept): one entry per page fetched."""
    return [(r["path"], tuple(sorted(parse_qsl(r["query"])))) for r in request_log(server)
            if r["path"].startswith("/crm/v3/objects/") and r["status"] == 200]


def _resumed_after_a_load(server, pause_s: float = 0.3, pages_after: int = 3) -> bool:
    """Whether page fetching paused (a checkpoint's load: extraction waits for it) and then went on."""
    stamps = [r["at"] for r in request_log(server) if r["path"].startswith("/crm/v3/objects/") and r["status"] == 200]
    return any(later - earlier >= pause_s and len(stamps) - i - 1 >= pages_after
               for i, (earlier, later) in enumerate(zip(stamps, stamps[1:], strict=False)))


def test_a_killed_sync_is_recorded_killed_and_its_pages_are_not_refetched_beyond_a_checkpoint(
        data_dir, tmp_path, sandbox_factory, connect_sandbox):
    server = sandbox_factory("hubspot", scale=2500)
    connection = connect_sandbox(server, "hubspot-kill", objects=["contacts", "companies", "deals"])
    config = str(tmp_path / "connections.yml")
    set_faults(server, latency_ms=40)
    # Checkpoints bounded by time: one second of fetching (the default is 20 s; the page bound stays 500).
    # Objects read one after another: a checkpoint then holds at most one reader's second of pages (25 at
    # 40 ms). Read concurrently (the default), a checkpoint holds a second of *each* reader's pages, and a
    # kill in a batch that began late under load can throw away up to three times as many (42 measured).
    env = {"CANONRY_CHECKPOINT_SECONDS": "1", "CANONRY_CONCURRENT_READS": "0"}
    process = _cli("sync", "--config", config, "-c", connection.id, "--no-transform", env=env)
    deadline = time.monotonic() + 120
    # Kill once a checkpoint is committed (fetching pauses while a batch loads, then resumes) and 45 pages
    # are in: never before the first load, which a fast machine reaches in under a second.
    while not (len(_object_pages(server)) >= 45 and _resumed_after_a_load(server)) and process.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the sync ended before it could be killed: raise the sandbox scale"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    before_kill = _object_pages(server)

    status = _cli("status", "--json")
    output = _finish(status, timeout=120)
    assert status.returncode == 0, output
    [record] = json.loads(output)
    assert record["last_run_status"] == "killed", record
    [killed] = query("select status, checkpoints, error_message, finished_at from ops.sync_runs")
    assert killed["status"] == "killed" and killed["checkpoints"] >= 1 and killed["finished_at"] is not None
    assert "killed: process" in killed["error_message"] and "checkpoint" in killed["error_message"]

    rerun = _cli("sync", "--config", config, "-c", connection.id, "--no-transform", env=env)
    output = _finish(rerun)
    assert rerun.returncode == 0, output
    after = _object_pages(server)[len(before_kill):]
    refetched = sorted(set(before_kill) & set(after))
    # What a kill can throw away: the pages of the batch being extracted, at most ~1 s of fetching at
    # 40 ms a page (25), plus the first page of each object that had not started (3).
    print(f"pages fetched before the kill: {len(before_kill)}, re-fetched after it: {len(refetched)}")
    assert len(refetched) <= 28, refetched
    pages_total = {page for page in before_kill + after}
    raw = query("select count(*) as n, count(distinct remote_id) as d from raw_hubspot.contacts")[0]
    assert raw["d"] == 2500 and len(pages_total) >= 75
    runs = query("select status from ops.sync_runs order by started_at")
    assert [r["status"] for r in runs] == ["killed", "success"]
