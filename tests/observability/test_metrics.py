"""`canonry metrics` on a scripted ops history: two connections, failures of three classes, replays, guard
checks. Every expected figure below is worked out by hand from the history (comments show the sums)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from canonry import ops
from canonry.cli import app
from canonry.guard import audit
from tests.helpers import query

runner = CliRunner()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def run(run_id, connection, provider, start, end, status, error_class=None, endpoint=None) -> dict:
    return {"run_id": run_id, "connection_id": connection, "provider": provider, "started_at": at(start),
            "finished_at": at(end), "status": status, "error_class": error_class, "error_endpoint": endpoint}


HISTORY = [
    run("h1", "hubspot-a", "hubspot", 10, 11, "failed", "auth_expired", "/oauth/v1/token"),
    run("h2", "hubspot-a", "hubspot", 20, 25, "success"),
    run("h3", "hubspot-a", "hubspot", 60, 61, "failed", "transient", "/crm/v3/objects/contacts"),
    run("h4", "hubspot-a", "hubspot", 70, 72, "partial", "rate_limited", "/crm/v3/objects/contacts"),
    run("h5", "hubspot-a", "hubspot", 90, 95, "success"),
    run("g1", "greenhouse-b", "greenhouse", 30, 32, "success"),
    run("g2", "greenhouse-b", "greenhouse", 100, 101, "failed", "transient", "/v1/candidates"),
]


def script_history() -> None:
    ops.append("connections", [
        {"connection_id": "hubspot-a", "tenant_id": "acme", "provider": "hubspot", "updated_at": at(90),
         "created_at": at(0)},
        {"connection_id": "greenhouse-b", "tenant_id": "acme", "provider": "greenhouse", "updated_at": at(100),
         "created_at": at(5)},
    ])
    ops.append("sync_runs", HISTORY)
    ops.append("api_calls", [
        {"run_id": "h3", "connection_id": "hubspot-a", "provider": "hubspot", "method": "GET",
         "endpoint": "/crm/v3/objects/contacts", "calls": 10, "errors": 2, "retries": 2},
        {"run_id": "h5", "connection_id": "hubspot-a", "provider": "hubspot", "method": "GET",
         "endpoint": "/crm/v3/objects/contacts", "calls": 6, "errors": 0, "retries": 0},
    ])
    ops.append("replays", [
        {"replay_id": "r1", "connection_id": "hubspot-a", "started_at": at(62), "finished_at": at(63),
         "success": True},
        {"replay_id": "r2", "connection_id": "hubspot-a", "started_at": at(64), "finished_at": at(65),
         "success": False},
    ])
    assert audit.write([audit.AuditRecord("soql", "check", "q", "select Id from Lead", verdict, [], 1.0)
                        for verdict in ("allow", "allow", "allow", "reject")]
                       + [audit.AuditRecord("sql", "check", "q", "select 1", "rewrite", ["limit"], 1.0)])


def metrics(*args: str) -> dict:
    result = runner.invoke(app, ["metrics", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_metrics_equal_hand_computed_values(data_dir):
    script_history()
    data = metrics()

    first = {r["connection_id"]: r["seconds"] for r in data["time_to_first_success"]}
    assert first == {"hubspot-a": 25 * 60.0,          # created 0m, first success finished 25m
                     "greenhouse-b": (32 - 5) * 60.0}  # created 5m, first success finished 32m

    rates = {(r["provider"], r["endpoint"], r["error_class"]): (r["failures"], r["runs"], r["rate"])
             for r in data["failure_rates"]}
    assert rates == {
        ("hubspot", "/oauth/v1/token", "auth_expired"): (1, 5, 0.2),
        ("hubspot", "/crm/v3/objects/contacts", "transient"): (1, 5, 0.2),
        ("hubspot", "/crm/v3/objects/contacts", "rate_limited"): (1, 5, 0.2),
        ("greenhouse", "/v1/candidates", "transient"): (1, 2, 0.5),
    }
    requests = {(r["provider"], r["endpoint"]): (r["calls"], r["errors"]) for r in data["request_error_rates"]}
    assert requests == {("hubspot", "/crm/v3/objects/contacts"): (16, 2)}

    resolution = {r["connection_id"]: r for r in data["resolution"]}
    # hubspot: failed at 11m, resolved 25m (14 min); failed 61m (72m still failing), resolved 95m (34 min).
    assert resolution["hubspot-a"]["durations_s"] == [14 * 60.0, 34 * 60.0]
    assert resolution["hubspot-a"]["mean_s"] == 24 * 60.0 and resolution["hubspot-a"]["open"] == 0
    # greenhouse: failing since 101m, not resolved yet.
    assert resolution["greenhouse-b"]["resolved"] == 0 and resolution["greenhouse-b"]["open"] == 1

    assert [(r["connection_id"], r["replays"], r["succeeded"], r["success_rate"]) for r in data["replays"]] == [
        ("hubspot-a", 2, 1, 0.5)]
    assert {(r["kind"], r["verdict"]): (r["checks"], r["share"]) for r in data["guard"]} == {
        ("soql", "allow"): (3, 0.75), ("soql", "reject"): (1, 0.25), ("sql", "rewrite"): (1, 1.0)}

    hubspot = data["providers"]["hubspot"]
    assert hubspot["time_to_first_success"] == {"count": 1, "mean_s": 1500.0, "max_s": 1500.0}
    assert hubspot["replays"]["success_rate"] == 0.5
    assert data["providers"]["greenhouse"]["resolution"]["open"] == 1


def test_metrics_since_bounds_the_window(data_dir):
    script_history()
    data = metrics("--since", at(80).isoformat())
    # Runs started from 80m: hubspot h5 (success), greenhouse g2 (failed).
    assert {(r["provider"], r["error_class"]): (r["failures"], r["runs"]) for r in data["failure_rates"]} == {
        ("greenhouse", "transient"): (1, 1)}
    # Only the incident resolved inside the window counts.
    assert {r["connection_id"]: r["durations_s"] for r in data["resolution"]}["hubspot-a"] == [34 * 60.0]
    assert data["replays"] == []
    # Lifetime figure, not windowed.
    assert {r["connection_id"]: r["seconds"] for r in data["time_to_first_success"]}["hubspot-a"] == 1500.0

    bad = runner.invoke(app, ["metrics", "--since", "yesterday"])
    assert bad.exit_code == 1 and "neither a duration" in bad.output


def test_metrics_prometheus_text(data_dir):
    script_history()
    result = runner.invoke(app, ["metrics", "--prometheus"])
    assert result.exit_code == 0, result.output
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(result.output) for s in family.samples}
    assert samples[("canonry_sync_failure_ratio", (("endpoint", "/v1/candidates"), ("error_class", "transient"),
                                                   ("provider", "greenhouse")))] == 0.5
    assert samples[("canonry_time_to_first_success_seconds",
                    (("connection_id", "hubspot-a"), ("provider", "hubspot")))] == 1500.0
    assert samples[("canonry_guard_checks", (("kind", "soql"), ("verdict", "reject")))] == 1


def test_metrics_route_serves_prometheus_text(data_dir):
    import requests
    from starlette.applications import Starlette

    from canonry.metrics import metrics_route
    from tests.observability.servers import serve

    script_history()
    with serve(Starlette(routes=[metrics_route()])) as base_url:
        response = requests.get(f"{base_url}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert 'canonry_replays{connection_id="hubspot-a",outcome="success"} 1.0' in response.text


def test_connection_creation_time_survives_later_syncs(data_dir):
    ops.upsert_connection("c1", "acme", "hubspot")
    first = query("select created_at, updated_at from ops.connections")[0]
    ops.upsert_connection("c1", "acme", "hubspot")
    second = query("select created_at, updated_at from ops.connections")[0]
    assert second["created_at"] == first["created_at"] and second["updated_at"] > first["updated_at"]
