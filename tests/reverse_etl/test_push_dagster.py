"""Declarative syncs in Dagster, in the shared reverse-ETL world (conftest.py; runs after test_push.py): each
sync is an asset `push/<sync>` downstream of the dbt model it reads and of that model's canonical tables; a
sync's `schedule` is a Dagster schedule of its own job. The push is materialised in process (the schedule's
job) and as a user runs it (`dagster asset materialize`, a subprocess with the default multiprocess executor),
each writing into the HubSpot sandbox over real HTTP."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
import yaml
from dagster import AssetKey, DagsterInstance, build_schedule_context

from canonry.rollout.pause import pause, resume
from tests.dagster.test_definitions import _load_definitions
from tests.dagster.test_user_runs import TIMEOUT, instance_env, last_run
from tests.helpers import query
from tests.reverse_etl.conftest import clear_write_log

MODEL = "rev_hubspot__deals"
SCHEDULED, ON_DEMAND = "dagster_deals_hourly", "dagster_deals_amounts"
SYNCS = {
    SCHEDULED: {"model": MODEL, "destination": {"provider": "hubspot", "object": "deals"}, "mode": "update",
                "fields": {"name": "dealname"}, "schedule": "15 * * * *"},
    ON_DEMAND: {"model": MODEL, "destination": {"provider": "hubspot", "object": "deals"}, "mode": "update",
                "fields": {"amount": "amount"}},
}


def deal_writes(world) -> list[dict]:
    entries = requests.get(f"{world.servers['hubspot'].base_url}/_sandbox/hubspot/writes", timeout=30).json()
    return [e for e in entries["writes"] if e["object"] == "deals" and e["success"]]


def test_each_sync_is_an_asset_with_its_schedule_and_pushes_in_process_and_from_the_cli(world, monkeypatch,
                                                                                         tmp_path):
    directory = world.tmp / "syncs"
    for name, body in SYNCS.items():
        (directory / f"{name}.yml").write_text(yaml.safe_dump(body, sort_keys=False))
    try:
        module = _load_definitions(monkeypatch, world.config_path)
        defs, graph = module.defs, module.defs.resolve_asset_graph()

        # Lineage model -> push: each sync's asset reads its dbt model and the canonical tables behind it.
        for name in SYNCS:
            parents = graph.get(AssetKey(["push", name])).parent_keys
            assert {AssetKey(["reverse_etl", MODEL]), AssetKey(["canonical", "crm_opportunities"])} <= parents
        assert AssetKey(["push", MODEL]) not in graph.get_all_asset_keys()   # the syncs push the model
        # The sync's schedule: its cron, one run per connection it writes, a job of the push and its lineage.
        schedule = defs.resolve_schedule_def(f"push_{SCHEDULED}")
        assert schedule.cron_schedule == "15 * * * *" and schedule.default_status.value == "RUNNING"
        tick = schedule.evaluate_tick(build_schedule_context(repository_def=defs.get_repository_def()))
        assert [r.partition_key for r in tick.run_requests] == ["hubspot-acme"]
        # A paused destination: the tick is a SkipReason naming the pause, recorded in ops.pause_skips.
        pause("hubspot-acme", reason="CRM cleanup this week")
        try:
            paused = schedule.evaluate_tick(build_schedule_context(repository_def=defs.get_repository_def()))
        finally:
            resume("hubspot-acme")
        assert not paused.run_requests and "CRM cleanup this week" in paused.skip_message
        assert "hubspot-acme paused by" in paused.skip_message
        skips = query("select reason from ops.pause_skips where skipped_by = ?", [f"dagster schedule push_{SCHEDULED}"])
        assert [s["reason"] for s in skips] == ["CRM cleanup this week"]
        job = defs.resolve_job_def(f"push_{SCHEDULED}_job")
        assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
            f"push/{SCHEDULED}", f"reverse_etl/{MODEL}", "canonical/crm_opportunities", "canonical/crm_users"}
        assert f"push_{ON_DEMAND}" not in {s.name for s in defs.schedules}   # no schedule: its connection's
        connection_job = {k.to_user_string() for k in
                          defs.resolve_job_def("sync_hubspot_acme_job").asset_layer.selected_asset_keys}
        assert f"push/{ON_DEMAND}" in connection_job and f"push/{SCHEDULED}" not in connection_job
        deals = query(f"select count(*) as n from reverse_etl.{MODEL}")[0]["n"]
        assert deals > 0

        # In process: the schedule's job rebuilds, gates (GE in this run), then pushes only the mapped field.
        clear_write_log(world.servers["hubspot"], "hubspot")
        result = job.execute_in_process(partition_key="hubspot-acme", instance=DagsterInstance.ephemeral())
        assert result.success
        pushed = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(["push", SCHEDULED])]
        assert pushed[0].materialization.metadata["connections"].value["hubspot-acme"]["written"] == deals
        writes = deal_writes(world)
        assert len(writes) == deals and {tuple(e["properties"]) for e in writes} == {("dealname",)}

        # As a user runs it: `dagster asset materialize` with the default (multiprocess) executor.
        clear_write_log(world.servers["hubspot"], "hubspot")
        env = instance_env(tmp_path, world.config_path)
        selection = f"push/{ON_DEMAND},reverse_etl/{MODEL},canonical/crm_opportunities,canonical/crm_users"
        done = subprocess.run([sys.executable, "-m", "dagster", "asset", "materialize", "--select", selection,
                               "--partition", "hubspot-acme", "-m", "dagster_project.definitions"],
                              env={**env, "CANONRY_SYNCS_DIR": str(directory)}, capture_output=True, text=True,
                              timeout=TIMEOUT)
        assert done.returncode == 0, done.stderr[-4000:]
        run, materialized = last_run(env)
        assert run.status.value == "SUCCESS" and (f"push/{ON_DEMAND}", "hubspot-acme") in materialized
        writes = deal_writes(world)
        amounts = query(f"select count(*) as n from reverse_etl.{MODEL} where amount is not null")[0]["n"]
        assert len(writes) == amounts > 0 and {tuple(e["properties"]) for e in writes} == {("amount",)}
        logged = query("select count(*) as n from ops.push_log where model = ? and status = 'written'", [ON_DEMAND])
        assert logged[0]["n"] == amounts
    finally:
        for name in SYNCS:
            (directory / f"{name}.yml").unlink()


def test_a_sync_file_that_does_not_parse_stops_the_code_location_with_file_and_line(tmp_path):
    from dagster_project.assets.reverse_etl import SyncFilesInvalid, load_sync_files

    bad = tmp_path / "deals_hourly.yml"
    bad.write_text("model: rev_hubspot__deals\ndestination: {provider: hubspot, object: deals}\n"
                   "fields: {name: dealname}\nschedule: 15 * * * *\nmode: sometimes\n")
    with pytest.raises(SyncFilesInvalid) as refused:
        load_sync_files(tmp_path)
    assert f"{bad}:5:" in str(refused.value) and "canonry validate" in str(refused.value)
