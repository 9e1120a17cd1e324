"""`canonry canary -c ID` through the CLI against real sandboxes: one authenticated request, latency and outcome
in ops.canary_runs; a revoked token is an auth_expired failure (exit 1); every provider has a probe. The Dagster
canary job and schedule: loaded from the definitions, run against Greenhouse and Salesforce sandboxes."""

from __future__ import annotations

import json

import pytest
from dagster import DefaultScheduleStatus
from typer.testing import CliRunner

from canonry.cli import app
from canonry.providers import slugs, spec
from tests.dagster.test_definitions import _load_definitions
from tests.helpers import clear_request_log, query, request_log
from tests.sources.test_salesforce import oauth_connection

runner = CliRunner()


def _connect(provider: str, server, connect_sandbox, monkeypatch, connection_id: str):
    """A connection to the sandbox with the provider's real auth: Greenhouse client credentials (token minted
    on the first request), Salesforce OAuth tokens from the web-server flow (instance URL in the token)."""
    if provider == "salesforce":
        return oauth_connection(server, connect_sandbox, monkeypatch, connection_id)
    if provider == "greenhouse":
        env = "CANONRY_TEST_" + connection_id.upper().replace("-", "_")
        return connect_sandbox(server, connection_id, auth={"kind": "client_credentials", "secret": f"env:{env}"})
    return connect_sandbox(server, connection_id)


# The reads each probe makes: one, after Greenhouse's token exchange (a sync's first call does the same).
PROBE_PATHS = {"greenhouse": ["/token", "/v3/offices"], "salesforce": ["/services/data/v62.0/limits"]}


@pytest.mark.parametrize("provider", slugs())
def test_canary_makes_one_cheap_authenticated_read(provider, data_dir, sandbox_factory, connect_sandbox, tmp_path,
                                                   monkeypatch):
    server = sandbox_factory(provider, scale=3)
    _connect(provider, server, connect_sandbox, monkeypatch, f"{provider}-canary")
    clear_request_log(server)
    result = runner.invoke(app, ["canary", "-c", f"{provider}-canary", "--config", str(tmp_path / "connections.yml")])
    assert result.exit_code == 0, result.output
    assert f"{provider}-canary: ok (HTTP 200)" in result.output
    api = [r for r in request_log(server) if not r["path"].startswith("/_sandbox")]
    assert all(r["status"] == 200 for r in api), api
    assert [r["path"] for r in api] == PROBE_PATHS.get(provider, [spec(provider).probe.path])
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


def test_every_provider_declares_a_probe():
    assert [slug for slug in slugs() if spec(slug).probe is None] == []


def test_dagster_canary_schedule_probes_every_connection(data_dir, sandbox_factory, connect_sandbox, tmp_path,
                                                         monkeypatch):
    greenhouse, salesforce = sandbox_factory("greenhouse", scale=3), sandbox_factory("salesforce", scale=3)
    _connect("greenhouse", greenhouse, connect_sandbox, monkeypatch, "gh-acme")
    _connect("salesforce", salesforce, connect_sandbox, monkeypatch, "sf-acme")
    wrong = json.dumps({"client_id": "canonry-greenhouse-client", "client_secret": "not-the-real-secret"})
    connect_sandbox(greenhouse, "gh-wrong", token=wrong,
                    auth={"kind": "client_credentials", "secret": "env:CANONRY_TEST_GH_WRONG"})
    defs = _load_definitions(monkeypatch, tmp_path / "connections.yml").defs
    schedule = defs.resolve_schedule_def("canonry_canary")
    assert schedule.default_status == DefaultScheduleStatus.RUNNING and schedule.job_name == "canary_job"

    result = defs.resolve_job_def("canary_job").execute_in_process(raise_on_error=False)
    assert not result.success  # gh-wrong's probe failed: the run fails, naming it for the failure sensor
    failure = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "1 of 3 canary probe(s) failed" in failure and "[auth_expired]" in failure
    assert "connection=gh-wrong" in failure and "not-the-real-secret" not in failure
    rows = {r["connection_id"]: r for r in query("select connection_id, ok, status, error_class from ops.canary_runs")}
    assert {cid: (r["ok"], r["error_class"]) for cid, r in rows.items()} == {
        "gh-acme": (True, None), "sf-acme": (True, None), "gh-wrong": (False, "auth_expired")}
