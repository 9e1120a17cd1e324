"""The command line: the demo (what `make demo` runs), sandbox serve, validate exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import requests
from typer.testing import CliRunner

from canonry.cli import app
from canonry.providers import slugs
from tests.helpers import query

runner = CliRunner()


def test_demo_runs_twice_second_run_incremental(data_dir):
    first = runner.invoke(app, ["demo", "--scale", "60"])
    assert first.exit_code == 0, first.output
    assert "canonical.crm_contacts" in first.output and "passed" in first.output
    assert "API calls:" in first.output and str(data_dir / "warehouse.duckdb") in first.output

    # The demo ends with a dry-run preview of one sync and a real push of another into the sandbox.
    assert "reverse ETL preview (hubspot_contacts_from_hires, dry run)" in first.output
    pushes = query("select status, written, calls from ops.push_runs where model = 'hubspot_deals'")
    deals = query("select count(*) as n from canonical.crm_opportunities where provider = 'hubspot'")[0]["n"]
    assert [(p["status"], p["written"], p["calls"]) for p in pushes] == [("success", deals, 1)]

    second = runner.invoke(app, ["demo", "--scale", "60", "--activity", "3"])
    assert second.exit_code == 0, second.output
    assert "simulated" in second.output
    runs = query("select records from ops.sync_runs where connection_id = 'hubspot-acme' order by started_at")
    assert len(runs) == 2
    loaded = [json.loads(r["records"]) for r in runs]
    assert loaded[0]["contacts"] == 60
    # Owners and pipelines are small reference lists re-read whole; CRM objects only what changed
    # (3 creates, 3 updates, 1 delete — an update or the delete may hit a record just created).
    assert 3 <= loaded[1]["contacts"] <= 3 + 3 + 1
    # 3 creates + 3 updates + 1 delete per object: the incremental run loads those, not the whole set.
    assert query("select count(*) as n from canonical.crm_contacts where provider = 'hubspot' and not is_deleted"
                 )[0]["n"] == 60 + 3 - 1
    # Every provider of the demo fed the canonical tables, and every sync of the second run succeeded.
    assert {r["provider"] for r in query("select distinct provider from canonical.crm_contacts")} == set(slugs("crm"))
    assert {r["provider"] for r in query("select distinct provider from canonical.ats_candidates")} == set(
        slugs("ats"))
    assert query("select count(*) as n from ops.sync_runs where status != 'success'")[0]["n"] == 0


def test_sandbox_serve_prints_base_url_and_serves_tls(tmp_path, data_dir):
    process = subprocess.Popen([sys.executable, "-m", "canonry.cli", "sandbox", "serve", "hubspot", "--scale", "5",
                                "--token", "cli-test-token", "--tls"],
                               stdout=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline().strip()
        second = process.stdout.readline().strip()
        assert first.startswith("serving hubspot at https://127.0.0.1:")
        base_url = first.rsplit(" ", 1)[1]
        cert = second.split(": ", 1)[1]
        response = requests.get(f"{base_url}/crm/v3/objects/contacts", verify=cert, timeout=10,
                                headers={"Authorization": "Bearer cli-test-token"})
        assert response.status_code == 200
        assert len(response.json()["results"]) == 5
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_validate_exit_codes(tmp_path, monkeypatch):
    good = tmp_path / "good.yml"
    good.write_text("connections:\n  - id: hs\n    tenant: t\n    provider: hubspot\n"
                    "    auth: {kind: api_key, secret: 'env:CLI_TEST_TOKEN'}\n")
    monkeypatch.setenv("CLI_TEST_TOKEN", "x" * 12)
    assert runner.invoke(app, ["validate", "--config", str(good)]).exit_code == 0
    bad = tmp_path / "bad.yml"
    bad.write_text(good.read_text().replace("provider: hubspot", "provider: hubspott"))
    result = runner.invoke(app, ["validate", "--config", str(bad)])
    assert result.exit_code == 1
    assert "bad.yml:4" in result.output and "unknown provider" in result.output
    refused = runner.invoke(app, ["sync", "--config", str(bad)])
    assert refused.exit_code == 1 and "refusing to sync" in refused.output
