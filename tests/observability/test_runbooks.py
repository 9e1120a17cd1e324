"""Runbooks: one page per error class, each with what it means, what to check and recovery commands, linked
from `canonry status`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from typer.testing import CliRunner

from canonry import ops
from canonry.cli import app
from canonry.errors import ErrorClass, runbook
from canonry.warehouse import PROJECT_ROOT

runner = CliRunner()
COMMANDS = {"connect", "disconnect", "sync", "validate", "secret", "status", "replay", "trace", "metrics"}


def test_every_error_class_has_a_runbook_with_recovery_commands():
    index = (PROJECT_ROOT / "docs/runbooks/README.md").read_text()
    for error_class in ErrorClass:
        page = PROJECT_ROOT / runbook(error_class.value)
        text = page.read_text()
        assert text.startswith(f"# `{error_class.value}`"), page
        for section in ("**What it means.**", "**What to check.**", "**Recover.**"):
            assert section in text, (page, section)
        used = set(re.findall(r"^canonry (\w+)", text, re.M))
        assert used and used <= COMMANDS, (page, used)
        assert f"({error_class.value}.md)" in index
    assert runbook(None) is None and runbook("no_such_class") is None


def test_status_links_the_runbook_of_the_last_error(data_dir):
    now = datetime.now(UTC)
    ops.upsert_connection("hubspot-a", "acme", "hubspot")
    ops.append("sync_runs", [{"run_id": "r1", "connection_id": "hubspot-a", "provider": "hubspot",
                              "started_at": now, "finished_at": now, "status": "failed",
                              "error_class": "auth_expired", "error_classes": ["auth_expired"]}])
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "hubspot-a: auth_expired — runbook docs/runbooks/auth_expired.md" in result.output
    as_json = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert as_json[0]["runbook"] == "docs/runbooks/auth_expired.md"
