"""Raw retention: after three syncs with updates in between, `canonry retention apply` (the CLI, as a user runs
it) deletes exactly the superseded versions older than the window and keeps every record's latest version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

from canonry.governance.raw_retention import apply
from canonry.pipeline import sync
from canonry.warehouse import connect
from tests.helpers import mutate

SCALE = 4


def cli(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "canonry.cli", "retention", "apply", "--json", *args],
                          env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def raw_persons() -> tuple[int, dict[str, str]]:
    """(versions stored, remote_id -> payload of its latest version)."""
    conn = connect()
    try:
        count = conn.execute("select count(*) from raw_pipedrive.persons").fetchone()[0]
        latest = dict(conn.execute("select remote_id, arg_max(payload, (remote_updated_at, _dlt_load_id)) "
                                   "from raw_pipedrive.persons group by remote_id").fetchall())
        return count, latest
    finally:
        conn.close()


def test_retention_keeps_latest_versions_and_the_window(data_dir, sandbox_factory, connect_sandbox, tmp_path,
                                                       monkeypatch):
    monkeypatch.setenv("CANONRY_CONFIG", str(tmp_path / "connections.yml"))  # the file connect_sandbox writes
    server = sandbox_factory("pipedrive", scale=SCALE)
    connection = connect_sandbox(server, "pipedrive-acme", raw_retention="30d")
    assert sync(connection).status == "success"
    updated = set()
    for seed in (1, 2):
        updated |= set(mutate(server, "persons", update=3, seed=seed)["update"])
        assert sync(connection).status == "success"
    versions, latest = raw_persons()
    superseded = versions - len(latest)
    assert superseded >= len(updated) > 0

    # Inside the window nothing goes: the connection's `raw_retention: 30d` (connections file) wins over the
    # default, through the CLI and the Dagster job alike; `--keep` wins over both. A dry run with a zero
    # window counts and deletes nothing.
    assert cli("--default", "0d")["raw"] == {}
    assert retention_job_report()["raw"] == {}
    dry = cli("--dry-run", "--default", "0d", "--keep", "pipedrive-acme=0s")
    assert dry["raw"]["raw_pipedrive.persons pipedrive-acme"] == superseded
    assert raw_persons()[0] == versions

    done = cli("--keep", "pipedrive-acme=0s")
    assert done["raw"]["raw_pipedrive.persons pipedrive-acme"] == superseded
    assert raw_persons() == (len(latest), latest)  # exactly the latest version of every record is left
    assert apply(default=timedelta(0)).raw == {}  # idempotent
    trail = subprocess.run([sys.executable, "-m", "canonry.cli", "audit", "--since", "1h", "--json"],
                           env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    actions = [row["action"] for row in json.loads(trail.stdout)]
    assert actions.count("sync") == 3 and actions.count("retention") == 5


def retention_job_report() -> dict:
    from dagster_project.governance import retention_job

    result = retention_job.execute_in_process()
    assert result.success
    return result.output_for_node("apply_retention")


def test_a_bad_raw_retention_is_a_validation_error_naming_its_line(data_dir, tmp_path):
    config = tmp_path / "connections.yml"
    config.write_text("version: 1\nconnections:\n  - id: pipedrive-acme\n    tenant: acme\n    provider: pipedrive\n"
                      "    auth: {kind: api_key, secret: 'env:CANONRY_TEST_UNUSED'}\n    raw_retention: forever\n")
    done = subprocess.run([sys.executable, "-m", "canonry.cli", "retention", "apply", "--dry-run"],
                          env={**os.environ, "CANONRY_CONFIG": str(config)}, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "connections.yml:7" in done.stdout + done.stderr and "raw_retention" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_the_dagster_retention_job_applies_it(data_dir):
    from dagster_project.governance import retention_job, retention_schedule

    assert retention_schedule.job_name == retention_job.name and retention_schedule.cron_schedule == "30 3 * * *"
    assert retention_job_report()["raw"] == {}
    conn = connect()
    try:
        assert conn.execute("select count(*) from ops.audit_log where action = 'retention'").fetchone()[0] == 1
    finally:
        conn.close()
