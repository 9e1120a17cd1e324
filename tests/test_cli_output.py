"""CLI output a user and a script read: `sync --json`, `status --json` (documented fields, ISO 8601) and the
status table in an 80-column terminal. Through the CLI, in a subprocess, on a fresh data dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime

from canonry.cli_output import STATUS_FIELDS

LONG_ID = "pipedrive-acme-production-eu"


def _cli(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "canonry.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_sync_and_status_json_and_an_80_column_status(data_dir, sandbox_factory, connect_sandbox, tmp_path):
    server = sandbox_factory("pipedrive", seed=5, scale=6)
    connect_sandbox(server, connection_id=LONG_ID)
    config = str(tmp_path / "connections.yml")

    synced = _cli("sync", "--config", config, "--json", "--no-transform")
    assert synced.returncode == 0, synced.stderr
    document = json.loads(synced.stdout)  # stdout is exactly one JSON document: no progress, no log line
    assert document["success"] is True
    [result] = document["syncs"]
    assert result["connection_id"] == LONG_ID and result["status"] == "success" and result["calls"] > 0
    assert result["records"]["persons"] > 0

    status = _cli("status", "--json")
    assert status.returncode == 0, status.stderr
    [record] = json.loads(status.stdout)
    assert set(record) == set(STATUS_FIELDS)
    for field in ("last_run", "last_success"):
        assert "T" in record[field] and datetime.fromisoformat(record[field]).utcoffset() is not None
    assert record["records"] == sum(record["records_by_object"].values())

    table = _cli("status", columns=80)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, table.stdout
    assert any(LONG_ID in line for line in lines), table.stdout  # never cut
    assert any(record["last_success"][:16].replace("T", " ") in line for line in lines), table.stdout
    assert "INFO" not in table.stdout + table.stderr
