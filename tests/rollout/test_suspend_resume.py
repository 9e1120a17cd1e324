"""A paused connection is skipped by `canonry sync` and by its Dagster schedule and job (a `dagster job
execute` subprocess, the default multiprocess executor), each skip recorded with the pause's reason;
`canonry resume` brings it back and its next incremental sync picks up what changed meanwhile. A rollout
pin fails a Dagster dbt run before dbt starts, naming the pin. (Last in
the package: its resumed sync loads raw rows the other tests' shadow builds would otherwise diff.)"""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from canonry.cli import app
from canonry.rollout.pins import Version, pins, set_pins, unpin
from tests.dagster.test_user_runs import instance_env
from tests.helpers import clear_request_log, mutate, query, request_log, truth

REASON = "provider migration until Friday"


def api_calls(server) -> list[str]:
    return [r["path"] for r in request_log(server) if not r["path"].startswith("/_sandbox")]


def test_paused_connection_is_skipped_then_resumed(world, tmp_path, monkeypatch):
    acme = world.servers["greenhouse-acme"]
    done = world.cli("pause", "-c", "greenhouse-acme", "--reason", REASON)
    assert done.returncode == 0, done.stderr
    assert REASON in done.stdout
    bad = CliRunner().invoke(app, ["pause", "-c", "greenhouse-acme", "--objects", "widgets"], terminal_width=200)
    assert bad.exit_code == 1 and "no object(s) widgets" in bad.output
    changed = {name: mutate(acme, name, create=1, update=2, seed=5) for name in ("candidates", "applications")}
    clear_request_log(acme)

    synced = world.cli("sync", "-c", "greenhouse-acme", "--json")
    assert synced.returncode == 0, synced.stderr
    document = json.loads(synced.stdout)
    assert document["syncs"] == [] and document["paused"][0]["reason"] == REASON
    assert "skipped: greenhouse-acme paused by" in synced.stderr and REASON in synced.stderr
    status = CliRunner().invoke(app, ["status", "--json"])
    [record] = [r for r in json.loads(status.stdout) if r["connection_id"] == "greenhouse-acme"]
    assert record["paused"]["reason"] == REASON and record["paused"]["objects"] is None

    # Dagster: the schedule's tick is a SkipReason naming the pause; a run of its job syncs nothing.
    from dagster import AssetKey, SkipReason, build_schedule_context, materialize

    from tests.dagster.test_definitions import _load_definitions

    module = _load_definitions(monkeypatch, world.config)
    defs = module.defs
    tick = defs.resolve_schedule_def("sync_greenhouse_acme").evaluate_tick(
        build_schedule_context(repository_def=defs.get_repository_def()))
    assert not tick.run_requests and REASON in tick.skip_message
    assert isinstance(SkipReason(tick.skip_message), SkipReason)
    # A rollout pin (rows put live with other code than this code location's) fails a Dagster dbt run
    # before dbt starts, naming the pin and what to do.
    set_pins(["greenhouse-acme"], Version("f" * 40, False, "e" * 64), "rollback")
    try:
        refused = materialize([module.canonry_dbt_assets], selection=[AssetKey(["canonical", "ats_applications"])],
                              resources={"dbt": module.dbt_resource()}, raise_on_error=False)
        listed = CliRunner().invoke(app, ["rollout", "pins", "--json"])
        assert [(p["connection_id"], p["action"]) for p in json.loads(listed.stdout)] == [("greenhouse-acme", "rollback")]
        lifted = CliRunner().invoke(app, ["rollout", "unpin", "-c", "greenhouse-acme"], terminal_width=200)
        assert lifted.exit_code == 0 and "unpinned greenhouse-acme" in lifted.output, lifted.output
    finally:
        unpin(["greenhouse-acme"])
    assert pins() == {}
    assert not refused.success
    failed = [e.step_failure_data for e in refused.all_events if e.is_step_failure]
    message = " ".join(f.user_failure_data.description if f.user_failure_data else f.error.message for f in failed)
    assert "greenhouse-acme pinned to dbt code eeeeeeeeeeee" in message, message
    assert "`canonry rollout unpin -c greenhouse-acme`" in message
    env = instance_env(tmp_path, world.config)
    run = subprocess.run([sys.executable, "-m", "dagster", "job", "execute", "-j", "sync_greenhouse_acme_job",
                          "--tags", json.dumps({"dagster/partition": "greenhouse-acme"}),
                          "-m", "dagster_project.definitions"], env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    assert api_calls(acme) == []
    skips = query("select skipped_by, reason from ops.pause_skips where connection_id = 'greenhouse-acme' "
                  "order by skipped_at")
    assert [s["skipped_by"].split(" ")[:2] for s in skips] == [["canonry", "sync"], ["dagster", "schedule"],
                                                               ["dagster", "run"]]
    assert {s["reason"] for s in skips} == {REASON}

    # Resumed: the next incremental sync picks up every change made while paused.
    resumed = world.cli("resume", "-c", "greenhouse-acme")
    assert resumed.returncode == 0 and "resumed greenhouse-acme" in resumed.stdout, resumed.stderr
    synced = world.cli("sync", "-c", "greenhouse-acme", "--json", "--no-transform")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["syncs"][0]["status"] == "success"
    assert api_calls(acme)
    for name in ("candidates", "applications"):
        wanted = {*changed[name]["create"], *changed[name]["update"]}
        latest = {str(item["id"]): item["record"] for item in truth(acme, name) if str(item["id"]) in wanted}
        assert set(latest) == wanted
        for remote_id, record in latest.items():
            [row] = query(f"select payload from raw_greenhouse.{name} where connection_id = 'greenhouse-acme' "
                          "and remote_id = ? order by _dlt_load_id desc limit 1", [remote_id])
            assert json.loads(row["payload"])["updated_at"] == record["updated_at"], (name, remote_id)
