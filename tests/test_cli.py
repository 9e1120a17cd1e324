"""The command line: sandbox serve, validate exit codes. (The demo, what `make demo` runs: the README
walk-through test, tests/test_readme_walkthrough.py.)"""

from __future__ import annotations

import subprocess
import sys

import requests
from typer.testing import CliRunner

from canonry.cli import app

runner = CliRunner()


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
