"""Alert rules: a stale connection fires once, is delivered to a local webhook receiver and a local SMTP server,
is not re-sent while open, and resolves after a successful (real) sync. Rule kinds on scripted ops history;
the rules file is validated with file:line; a broken receiver never fails a sync."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import yaml
from typer.testing import CliRunner

from canonry import ops
from canonry.alerting import after_run, evaluate
from canonry.alerting.rules import AlertsFile
from canonry.cli import app
from canonry.guard import audit
from canonry.pipeline import sync
from tests.helpers import query
from tests.observability.receivers import WebhookReceiver, smtp_server

runner = CliRunner()
SECRET_PATH = "/services/T0001/B0002/hook-secret-part"


def write_alerts(data_dir, rules: list[dict], destinations: list[dict]) -> None:
    (data_dir / "alerts.yml").write_text(yaml.safe_dump({"version": 1, "rules": rules,
                                                         "destinations": destinations}, sort_keys=False))


def test_stale_connection_alert_fires_once_is_delivered_and_resolves(data_dir, sandbox_factory, connect_sandbox):
    server = sandbox_factory("hubspot", scale=5)
    connection = connect_sandbox(server, "hubspot-alert", objects=["contacts"])
    receiver = WebhookReceiver(fail_first=1)  # the first POST fails: delivery is retried
    with receiver.running(SECRET_PATH) as url, smtp_server() as (smtp_port, mails):
        write_alerts(data_dir, [{"id": "stale", "kind": "freshness", "max_age": "2s", "severity": "page"}],
                     [{"kind": "webhook", "url": url},
                      {"kind": "email", "host": "127.0.0.1", "port": smtp_port, "sender": "canonry@example.test",
                       "to": ["oncall@example.test"]}])
        assert sync(connection).status == "success"  # fresh: the hook evaluates, nothing fires
        assert receiver.bodies == [] and mails == []

        time.sleep(2.5)
        first = runner.invoke(app, ["alerts", "evaluate"])
        assert first.exit_code == 0, first.output
        assert "1 fired" in first.output
        assert len(receiver.bodies) == 1 and receiver.requests == 2 and len(mails) == 1
        text = receiver.bodies[0]["text"]
        assert text.startswith("[page] stale hubspot-alert: stale: last successful sync") and "SLO: max age 2s" in text
        assert receiver.bodies[0]["alert"]["event"] == "firing"
        assert mails[0]["To"] == "oncall@example.test"
        assert "stale hubspot-alert" in mails[0]["Subject"]
        assert "last successful sync" in mails[0].get_payload()

        again = runner.invoke(app, ["alerts", "evaluate"])  # still stale: open, not re-sent
        assert "0 fired" in again.output and "1 still open" in again.output
        assert len(receiver.bodies) == 1 and len(mails) == 1
        listed = json.loads(runner.invoke(app, ["alerts", "list", "--json"]).output)
        assert [(a["rule_id"], a["connection_id"]) for a in listed] == [("stale", "hubspot-alert")]

        assert sync(connection).status == "success"  # the hook after the run resolves it
        assert [b["alert"]["event"] for b in receiver.bodies] == ["firing", "resolved"]
        assert len(mails) == 2 and mails[1]["Subject"].startswith("canonry alert: [resolved] stale hubspot-alert")
    states = query("select status from ops.alert_rules_state")
    assert [s["status"] for s in states] == ["resolved"]
    deliveries = query("select destination, attempts, delivered from ops.alert_deliveries order by destination")
    assert all(d["delivered"] for d in deliveries) and len(deliveries) == 4
    assert max(d["attempts"] for d in deliveries if d["destination"].startswith("webhook")) == 2
    # The webhook's path (its credential, for Slack) is stored nowhere.
    assert not any("hook-secret-part" in json.dumps(row, default=str)
                   for table in ("alerts", "alert_rules_state", "alert_deliveries")
                   for row in query(f"select * from ops.{table}"))


def _script(now: datetime) -> None:
    ops.append("connections", [
        {"connection_id": c, "tenant_id": "acme", "provider": p, "updated_at": now, "created_at": now - timedelta(days=2)}
        for c, p in (("hub-1", "hubspot"), ("gh-1", "greenhouse"), ("sf-1", "salesforce"))])
    runs = [("hub-1", -30, "success", None), ("gh-1", -300, "success", None), ("gh-1", -120, "failed", "transient"),
            ("gh-1", -60, "failed", "transient"), ("sf-1", -20, "failed", "auth_expired")]
    ops.append("sync_runs", [{"run_id": f"r{i}", "connection_id": c, "provider": "x",
                              "started_at": now + timedelta(minutes=m), "finished_at": now + timedelta(minutes=m),
                              "status": s, "error_class": e} for i, (c, m, s, e) in enumerate(runs)])
    ops.set_connection_state("sf-1", "needs_reauth", "refresh token revoked", "auth_expired")
    ops.append("push_log", [{"run_id": "p", "model": "m", "connection_id": "hub-1", "record_key": f"k{i}",
                             "status": "rejected", "logged_at": now} for i in range(3)])
    audit.write([audit.AuditRecord("soql", "check", "q", "q", "reject", ["write_statement"], 1.0)] * 4)


def test_each_rule_kind_on_a_scripted_history(data_dir):
    now = datetime.now(UTC)
    _script(now)
    rules = AlertsFile.model_validate({"rules": [
        {"id": "fresh", "kind": "freshness", "max_intervals": 2},   # hourly default: 2h
        {"id": "fail", "kind": "failure_rate", "window": "3h", "threshold": 0.5, "min_runs": 2},
        {"id": "reauth", "kind": "needs_reauth", "severity": "page"},
        {"id": "parked", "kind": "parked_rows", "max": 2},
        {"id": "guard", "kind": "guard_rejections", "window": "1h", "max": 3},
    ]})
    report = evaluate(rules, schedules={"hub-1": "*/10 * * * *"}, send=False)  # hub-1: 2 x 10 min
    fired = {(e.rule_id, e.connection_id): e for e in report.fired}
    # fresh: hub-1 last success 30 min ago > 20 min; gh-1 300 min ago > 2h; sf-1 never, created 2 days ago.
    assert {k for k in fired if k[0] == "fresh"} == {("fresh", "hub-1"), ("fresh", "gh-1"), ("fresh", "sf-1")}
    # fail: gh-1 has 2 failed of 2 runs in 3h (the success was 5h ago); sf-1 one run only (< min_runs).
    assert {k for k in fired if k[0] == "fail"} == {("fail", "gh-1")}
    assert fired[("fail", "gh-1")].error_class == "transient"
    assert fired[("reauth", "sf-1")].runbook == "docs/runbooks/auth_expired.md"
    assert {k for k in fired if k[0] == "parked"} == {("parked", "hub-1")}
    assert fired[("guard", None)].message.startswith("4 guard rejections in the last 1h")
    assert len(report.fired) == 7

    # The same history again: nothing new. A re-authorised connection's alert resolves.
    ops.set_connection_state("sf-1", "active")
    second = evaluate(rules, schedules={"hub-1": "*/10 * * * *"}, send=False)
    assert second.fired == [] and [(e.rule_id, e.connection_id) for e in second.resolved] == [("reauth", "sf-1")]


def test_rules_file_problems_have_file_and_line(tmp_path):
    bad = tmp_path / "alerts.yml"
    bad.write_text("version: 1\nrules:\n  - id: stale\n    kind: freshness\n    max_age: soon\n"
                   "  - id: rate\n    kind: failure_rate\n    threshold: 3\n"
                   "destinations:\n  - kind: pager\n")
    result = runner.invoke(app, ["alerts", "check", "--alerts", str(bad)])
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert f"{bad}:5: [invalid_value] rules.0.max_age" in out
    assert f"{bad}:8: [invalid_value] rules.1.threshold" in out
    assert f"{bad}:10:" in out and "destinations.0" in out
    good = tmp_path / "ok.yml"
    good.write_text("rules:\n  - {id: reauth, kind: needs_reauth}\n")
    assert runner.invoke(app, ["alerts", "check", "--alerts", str(good)]).exit_code == 0


def test_unreachable_receiver_never_fails_and_is_retried_later(data_dir):
    now = datetime.now(UTC)
    _script(now)
    write_alerts(data_dir, [{"id": "reauth", "kind": "needs_reauth"}],
                 [{"kind": "webhook", "url": "http://127.0.0.1:9/nothing-listens", "timeout_s": 1}])
    report = after_run("run-x")
    assert report is not None and len(report.fired) == 1 and report.failed_deliveries == 1
    assert query("select attempts, delivered from ops.alert_deliveries") == [{"attempts": 3, "delivered": False}]
    after_run("run-y")  # the failed delivery is tried again
    assert query("select attempts, delivered from ops.alert_deliveries") == [{"attempts": 6, "delivered": False}]
    (data_dir / "alerts.yml").write_text("rules: [")  # a broken file is logged, never raised
    assert after_run("run-z") is None


def test_dagster_alert_rules_sensor_evaluates_the_rules(data_dir):
    from dagster import build_sensor_context

    from dagster_project.sensors import alert_rules

    skipped = alert_rules(build_sensor_context())
    assert "no alert rules" in skipped.skip_message
    _script(datetime.now(UTC))
    write_alerts(data_dir, [{"id": "reauth", "kind": "needs_reauth"}], [])
    result = alert_rules(build_sensor_context())
    assert "1 fired" in result.skip_message
    assert [(a["rule_id"], a["connection_id"]) for a in query(
        "select rule_id, connection_id from ops.alert_rules_state where status = 'open'")] == [("reauth", "sf-1")]
