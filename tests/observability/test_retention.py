"""`canonry ops prune`: rows of the high-volume ops tables older than the retention go, newer ones and the
per-run summaries stay; --dry-run deletes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from canonry import ops
from canonry.cli import app
from canonry.guard import audit
from tests.helpers import query

runner = CliRunner()


def test_prune_deletes_only_old_rows(data_dir):
    now = datetime.now(UTC)
    old, new = now - timedelta(days=40), now - timedelta(days=2)
    ops.append("sync_runs", [{"run_id": r, "connection_id": "c", "provider": "hubspot", "started_at": at,
                              "finished_at": at, "status": "success"} for r, at in (("old", old), ("new", new))])
    ops.append("api_calls", [{"run_id": r, "connection_id": "c", "provider": "hubspot", "endpoint": "/x",
                              "calls": 1} for r in ("old", "new", "new")])
    ops.append("sync_errors", [{"run_id": "x", "connection_id": "c", "error_class": "transient", "occurred_at": at}
                               for at in (old, new)])
    audit.write([audit.AuditRecord("sql", "check", "q", "select 1", "allow", [], 1.0)])
    conn = ops.connect()
    conn.execute("update ops.query_audit set ts = ts - interval 40 day")
    conn.close()
    audit.write([audit.AuditRecord("sql", "check", "q", "select 1", "allow", [], 1.0)])

    dry = runner.invoke(app, ["ops", "prune", "--older-than", "30d", "--dry-run"])
    assert dry.exit_code == 0 and "api_calls: 1" in dry.output and "would delete" in dry.output
    assert query("select count(*) as n from ops.api_calls")[0]["n"] == 3

    done = runner.invoke(app, ["ops", "prune", "--older-than", "30d"])
    assert done.exit_code == 0, done.output
    assert "api_calls: 1, sync_errors: 1" in done.output and "query_audit: 1" in done.output
    assert [r["run_id"] for r in query("select run_id from ops.api_calls")] == ["new", "new"]
    assert query("select count(*) as n from ops.sync_errors")[0]["n"] == 1
    assert query("select count(*) as n from ops.query_audit")[0]["n"] == 1
    assert query("select count(*) as n from ops.sync_runs")[0]["n"] == 2  # summaries are kept

    bad = runner.invoke(app, ["ops", "prune", "--older-than", "forever"])
    assert bad.exit_code == 1 and "ops retention 'forever'" in bad.output
