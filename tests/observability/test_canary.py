"""`canonry canary -c ID` through the CLI against real sandboxes: one authenticated request, latency and outcome
in ops.canary_runs; a revoked token is an auth_expired failure (exit 1); a provider without a probe says so."""

from __future__ import annotations

import pytest
import requests
from typer.testing import CliRunner

from canonry.cli import app
from tests.helpers import clear_request_log, query, request_log

runner = CliRunner()


@pytest.mark.parametrize("provider", ["hubspot", "lever", "pipedrive", "ashby"])
def test_canary_makes_one_cheap_authenticated_read(provider, data_dir, sandbox_factory, connect_sandbox, tmp_path):
    server = sandbox_factory(provider, scale=3)
    connect_sandbox(server, f"{provider}-canary")
    clear_request_log(server)
    result = runner.invoke(app, ["canary", "-c", f"{provider}-canary", "--config", str(tmp_path / "connections.yml")])
    assert result.exit_code == 0, result.output
    assert f"{provider}-canary: ok (HTTP 200)" in result.output
    api = [r for r in request_log(server) if not r["path"].startswith("/_sandbox")]
    assert len(api) == 1 and api[0]["status"] == 200
    row = query("select provider, ok, status, latency_ms, error_class from ops.canary_runs")[0]
    assert (row["provider"], row["ok"], row["status"], row["error_class"]) == (provider, True, 200, None)
    assert row["latency_ms"] > 0


def test_canary_failure_is_recorded_with_its_class(data_dir, sandbox_factory, connect_sandbox, tmp_path):
    server = sandbox_factory("hubspot", scale=3)
    connect_sandbox(server, "hubspot-revoked", token="not-the-sandbox-token")
    result = runner.invoke(app, ["canary", "-c", "hubspot-revoked", "--config", str(tmp_path / "connections.yml")])
    assert result.exit_code == 1 and "canary failed" in result.output and "auth_expired" in result.output
    row = query("select ok, status, error_class, message from ops.canary_runs")[0]
    assert (row["ok"], row["status"], row["error_class"]) == (False, 401, "auth_expired")
    assert "not-the-sandbox-token" not in (row["message"] or "")


def test_canary_without_a_probe_says_so(data_dir, sandbox_factory, connect_sandbox, tmp_path):
    server = sandbox_factory("greenhouse", scale=3)
    connect_sandbox(server, "gh-canary", auth={"kind": "client_credentials", "client_id": "x",
                                               "secret": "env:CANONRY_TEST_GH_CANARY"})
    result = runner.invoke(app, ["canary", "-c", "gh-canary", "--config", str(tmp_path / "connections.yml")])
    assert result.exit_code == 1 and "no canary probe for provider 'greenhouse'" in result.output
    requests.get(server.base_url + "/_sandbox/info", timeout=10).raise_for_status()
