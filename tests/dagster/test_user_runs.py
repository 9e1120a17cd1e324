"""Dagster as a user runs it: `dagster job execute` and `dagster asset materialize` as subprocesses, with the
project's default (multiprocess) executor and an instance (DAGSTER_HOME) of their own, against two HubSpot
sandboxes over real HTTP. One connection's schedule job syncs that connection only; one raw table can be
materialised alone; a connection that missed two intervals fails its freshness check and raises an alert
that `canonry status` shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import requests
import yaml
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus
from typer.testing import CliRunner

from canonry.cli import app
from canonry.warehouse import connect
from dagster_project.instance import dagster_home_config
from tests.helpers import query

SCALE = 60  # the smallest scale whose HubSpot contacts include leads (crm_leads' GE suite needs rows)
TIMEOUT = 900


def dagster(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dagster", *args, "-m", "dagster_project.definitions"],
                          env=env, capture_output=True, text=True, timeout=TIMEOUT)


def api_requests(server) -> list[str]:
    """Paths of the provider API requests the sandbox received (its control endpoints excluded)."""
    log = requests.get(f"{server.base_url}/_sandbox/requests", timeout=30).json()["requests"]
    return [r["path"] for r in log if not r["path"].startswith("/_sandbox")]


def clear_requests(*servers) -> None:
    for server in servers:
        requests.delete(f"{server.base_url}/_sandbox/requests", timeout=30).raise_for_status()


def instance_env(tmp_path: Path, config: Path) -> dict:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(dagster_home_config())
    return {**os.environ, "CANONRY_CONFIG": str(config), "DAGSTER_HOME": str(home)}


def last_run(env: dict):
    """The instance's latest run and the (asset, partition) pairs it materialised."""
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        run = instance.get_runs(limit=1)[0]
        records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
        events = [r.event_log_entry.dagster_event for r in records]
    return run, {(e.asset_key.to_user_string(), e.partition) for e in events}


def test_one_connection_runs_alone_under_the_multiprocess_executor(data_dir, sandbox_factory, connect_sandbox,
                                                                     tmp_path, monkeypatch):
    acme = sandbox_factory("hubspot", scale=SCALE)
    beta = sandbox_factory("hubspot", scale=SCALE, seed=8)
    connect_sandbox(acme, "hubspot-acme", schedule="*/30 * * * *",
                    write_back={"enabled": True, "objects": ["contacts"]})
    connect_sandbox(beta, "hubspot-beta", tenant="beta", schedule="0 * * * *")
    config = tmp_path / "connections.yml"
    # A third connection whose secret is not set: the code location still loads, the others run.
    entries = yaml.safe_load(config.read_text())["connections"]
    entries.append({**entries[1], "id": "hubspot-gamma", "auth": {"kind": "api_key",
                                                                  "secret": "env:CANONRY_TEST_UNSET_SECRET"}})
    monkeypatch.delenv("CANONRY_TEST_UNSET_SECRET", raising=False)
    write(config, entries)
    env = instance_env(tmp_path, config)
    clear_requests(acme, beta)

    # The schedule job of hubspot-acme, as its schedule launches it (partition = the connection).
    done = dagster(["job", "execute", "-j", "sync_hubspot_acme_job",
                    "--tags", json.dumps({"dagster/partition": "hubspot-acme"})], env)
    assert done.returncode == 0, done.stderr[-4000:]
    run, materialized = last_run(env)
    assert run.status == DagsterRunStatus.SUCCESS and run.job_name == "sync_hubspot_acme_job"
    assert ("raw/hubspot/contacts", "hubspot-acme") in materialized
    assert ("canonical/crm_contacts", None) in materialized
    assert ("push/rev_hubspot__contacts", "hubspot-acme") in materialized
    assert api_requests(acme), "the connection's sandbox received no request"
    assert api_requests(beta) == [], "the other HubSpot connection was synced"
    assert {r["connection_id"] for r in query("select connection_id from ops.sync_runs")} == {"hubspot-acme"}
    # The GE rows carry the Dagster run id (a failed check links to its run).
    gate = query("select count(*) as n, bool_and(success) as ok from ops.validation_results where run_id = ?",
                 [run.run_id])[0]
    assert gate["n"] > 0 and gate["ok"]

    # One raw table alone: only its object is read from the provider.
    clear_requests(acme, beta)
    done = dagster(["asset", "materialize", "--select", "raw/hubspot/contacts", "--partition", "hubspot-acme"], env)
    assert done.returncode == 0, done.stderr[-4000:]
    run, materialized = last_run(env)
    assert run.status == DagsterRunStatus.SUCCESS
    assert materialized == {("raw/hubspot/contacts", "hubspot-acme")}
    objects = {p for p in api_requests(acme) if p.startswith("/crm/v3/objects/")}
    assert objects and all(p.startswith("/crm/v3/objects/contacts") for p in objects), objects
    assert api_requests(beta) == []

    # hubspot-acme missed two intervals (every 30 min; its last success 2 h ago): its tables are stale.
    conn = connect()
    try:
        conn.execute("update ops.sync_runs set finished_at = finished_at - ?", [timedelta(hours=2)])
    finally:
        conn.close()
    done = dagster(["job", "execute", "-j", "canonical_freshness_job"], env)
    assert done.returncode == 0, done.stderr[-4000:]
    run, _ = last_run(env)
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        evaluation = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [check_key("crm_contacts")])[check_key("crm_contacts")]
        assert evaluation.run_id == run.run_id and evaluation.status.value == "FAILED"
    alerts = query("select * from ops.alerts where source = 'freshness'")
    assert [a["connection_id"] for a in alerts] == ["hubspot-acme"]
    assert alerts[0]["run_id"] == run.run_id and "crm_contacts" in alerts[0]["message"]

    status = CliRunner().invoke(app, ["status"], terminal_width=240)
    assert status.exit_code == 0, status.output
    assert "Open alerts (1)" in status.output and "stale" in status.output
    assert json.loads(CliRunner().invoke(app, ["status", "--json"]).output)[0]["open_alerts"][0]["error_class"] \
        == "stale"


def check_key(table: str):
    from dagster import AssetCheckKey

    return AssetCheckKey(AssetKey(["canonical", table]), f"fresh_{table}")


def write(path: Path, entries: list[dict]) -> None:
    path.write_text(yaml.safe_dump({"connections": entries}, sort_keys=False))


def hubspot(connection_id: str, **overrides) -> dict:
    return {"id": connection_id, "tenant": "acme", "provider": "hubspot",
            "auth": {"kind": "api_key", "secret": "env:CANONRY_TEST_PARTITIONS_TOKEN"},
            "base_url": "http://127.0.0.1:9", **overrides}


def test_partitions_and_schedules_follow_the_connections_file(data_dir, tmp_path, monkeypatch):
    from dagster import DefaultScheduleStatus, materialize

    from tests.dagster.test_definitions import _load_definitions

    monkeypatch.setenv("CANONRY_TEST_PARTITIONS_TOKEN", "token-not-used")
    monkeypatch.delenv("CANONRY_TEST_UNSET_SECRET", raising=False)
    config = tmp_path / "connections.yml"
    raw = AssetKey(["raw", "hubspot", "contacts"])

    # Adding a connection adds its partition and its schedule (stopped when the file says so); a connection
    # whose secret does not resolve keeps its partition and reports why, the others load.
    write(config, [hubspot("hubspot-acme", write_back={"enabled": True, "objects": ["contacts"]}),
                   hubspot("hubspot-beta", schedule_enabled=False),
                   hubspot("hubspot-gamma", auth={"kind": "api_key", "secret": "env:CANONRY_TEST_UNSET_SECRET"})])
    defs = _load_definitions(monkeypatch, config).defs
    partitions = defs.resolve_assets_def(raw).partitions_def.get_partition_keys()
    assert partitions == ["hubspot-acme", "hubspot-beta", "hubspot-gamma"]
    assert defs.resolve_schedule_def("sync_hubspot_acme").default_status == DefaultScheduleStatus.RUNNING
    assert defs.resolve_schedule_def("sync_hubspot_beta").default_status == DefaultScheduleStatus.STOPPED
    assert defs.resolve_sensor_def("canonry_failure_alerts").default_status.value == "RUNNING"
    graph = defs.resolve_asset_graph()
    assert not [k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "default"]
    # Canonical tables follow their inputs (declarative automation), no hand-written job per provider.
    mart = AssetKey(["canonical", "crm_contacts"])
    assert graph.get(mart).automation_condition.get_label() == "when inputs update"
    # A schedule tick asks for its connection's partition; its job pushes only to that connection.
    from dagster import build_schedule_context

    tick = defs.resolve_schedule_def("sync_hubspot_acme").evaluate_tick(
        build_schedule_context(repository_def=defs.get_repository_def()))
    assert [r.partition_key for r in tick.run_requests] == ["hubspot-acme"]
    pushes = {k.to_user_string() for k in defs.resolve_job_def("sync_hubspot_beta_job").asset_layer.selected_asset_keys
              if k.path[0] == "push"}
    assert pushes == set()  # hubspot-beta writes nothing back
    ingest = defs.resolve_assets_def(raw)
    assert "hubspot-gamma" in ingest.specs_by_key[raw].description
    result = materialize([ingest], partition_key="hubspot-gamma", raise_on_error=False,
                         selection=[raw])
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
    assert f"{config}:" in failure and "[secret_unresolved]" in failure and "CANONRY_TEST_UNSET_SECRET" in failure

    # Removing a connection removes its partition and stops its schedule.
    write(config, [hubspot("hubspot-beta")])
    defs = _load_definitions(monkeypatch, config).defs
    assert defs.resolve_assets_def(raw).partitions_def.get_partition_keys() == ["hubspot-beta"]
    assert "sync_hubspot_acme" not in {s.name for s in defs.schedules}

    # A file that cannot load as a whole: the code location fails with the validation message, file:line.
    config.write_text("connections:\n  - id: hubspot-acme\n    provider: hubspot\n   tenant: [\n")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(dagster_home_config())
    done = dagster(["definitions", "validate"], {**os.environ, "CANONRY_CONFIG": str(config),
                                                 "DAGSTER_HOME": str(home)})
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"{config}:4: [yaml_syntax]" in output, output[-3000:]
    assert "Traceback (most recent call last)" not in output
    # `canonry ui --config` on that file refuses to start the UI, with the same message.
    refused = CliRunner().invoke(app, ["ui", "--config", str(config)], terminal_width=240)
    assert refused.exit_code == 1 and "[yaml_syntax]" in refused.output and ":4:" in refused.output
