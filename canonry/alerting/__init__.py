"""Alert rules (alerts.yml) evaluated against `ops`: open, deduplicate, resolve and deliver alerts.

`evaluate()` runs after every sync (`canonry.pipeline.sync` calls `after_run`), from the Dagster sensor
`canonry_alert_rules` and from `canonry alerts check`. A rule breached for a connection opens one alert
(a row in `ops.alerts`, source `rules`, and its state in `ops.alert_rules_state`) and sends it once; while it
stays breached nothing more is sent; when it no longer fires the alert is resolved and the resolution is sent.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from canonry import ops
from canonry.alerting.checks import CHECKS, Context, Finding
from canonry.alerting.deliver import MAX_TOTAL_ATTEMPTS, AlertEvent, deliver, destination_label
from canonry.alerting.rules import AlertsFile, load_alerts
from canonry.errors import runbook
from canonry.warehouse import connect

log = logging.getLogger("canonry.alerting")
__all__ = ["EvaluationReport", "after_run", "connection_schedules", "evaluate", "open_alerts"]


@dataclass
class EvaluationReport:
    fired: list[AlertEvent] = field(default_factory=list)
    resolved: list[AlertEvent] = field(default_factory=list)
    still_open: int = 0
    delivered: int = 0
    failed_deliveries: int = 0

    def summary(self) -> str:
        return (f"{len(self.fired)} fired, {len(self.resolved)} resolved, {self.still_open} still open, "
                f"{self.delivered} deliveries sent, {self.failed_deliveries} failed")


def connection_schedules(config_path=None) -> dict[str, str]:
    """connection id -> cron schedule, from the connections file when it parses (schema only)."""
    from canonry.config import config_path as resolve_config
    from canonry.config import parse_file

    path = resolve_config(config_path)
    if not path.exists():
        return {}
    model, _problems, _lines, _data = parse_file(path)
    return {c.id: c.schedule for c in model.connections} if model else {}


def _reconcile(conn, rules: AlertsFile, findings: list[Finding], now: datetime,
               run_id: str | None) -> tuple[list[AlertEvent], list[AlertEvent], int]:
    open_rows = conn.execute("""select s.alert_id, s.rule_id, s.connection_id, a.severity, a.message,
                                       a.error_class, s.runbook
                                from ops.alert_rules_state s join ops.alerts a using (alert_id)
                                where s.status = 'open'""").fetchall()
    open_by_key = {(r[1], r[2]): r for r in open_rows}
    firing = {(f.rule_id, f.connection_id): f for f in findings}
    fired, resolved = [], []
    for key, finding in firing.items():
        if key in open_by_key:
            conn.execute("update ops.alert_rules_state set last_seen_at = ? where alert_id = ?",
                         [now, open_by_key[key][0]])
            continue
        alert_id = uuid.uuid4().hex[:12]
        book = runbook(finding.error_class)
        ops.append("alerts", [{
            "alert_id": alert_id, "raised_at": now, "source": "rules", "severity": finding.severity,
            "job_name": None, "run_id": run_id, "connection_id": finding.connection_id,
            "error_class": finding.error_class, "message": finding.message}], conn)
        ops.append("alert_rules_state", [{
            "alert_id": alert_id, "rule_id": finding.rule_id, "connection_id": finding.connection_id,
            "status": "open", "opened_at": now, "resolved_at": None, "last_seen_at": now, "runbook": book}], conn)
        fired.append(AlertEvent(alert_id, "firing", finding.rule_id, finding.connection_id, finding.severity,
                                finding.message, finding.error_class, book))
    for key, row in open_by_key.items():
        if key not in firing:
            conn.execute("update ops.alert_rules_state set status = 'resolved', resolved_at = ? where alert_id = ?",
                         [now, row[0]])
            resolved.append(AlertEvent(row[0], "resolved", row[1], row[2], row[3], row[4], row[5], row[6]))
    still_open = len(set(firing) & set(open_by_key))
    return fired, resolved, still_open


def _pending(conn) -> list[tuple[AlertEvent, str, int]]:
    """Events whose delivery failed before and may be tried again: (event, destination label, attempts)."""
    rows = conn.execute(f"""select d.alert_id, d.event, d.destination, d.attempts, s.rule_id, s.connection_id,
                                  a.severity, a.message, a.error_class, s.runbook
                           from ops.alert_deliveries d join ops.alert_rules_state s using (alert_id)
                           join ops.alerts a using (alert_id)
                           where not d.delivered and d.attempts < {MAX_TOTAL_ATTEMPTS}""").fetchall()
    return [(AlertEvent(r[0], r[1], r[4], r[5], r[6], r[7], r[8], r[9]), r[2], r[3]) for r in rows]


def evaluate(rules: AlertsFile, *, now: datetime | None = None, run_id: str | None = None,
             schedules: dict[str, str] | None = None, send: bool = True) -> EvaluationReport:
    """Evaluate every rule, open/resolve alerts in `ops`, then deliver (outside the warehouse connection)."""
    now = now or datetime.now(UTC)
    ctx = Context(now, schedules if schedules is not None else connection_schedules())
    conn = connect()
    try:
        ops.ensure_tables(conn)
        findings = [f for rule in rules.rules for f in CHECKS[rule.kind](conn, rule, ctx)]
        fired, resolved, still_open = _reconcile(conn, rules, findings, now, run_id)
        retry = _pending(conn) if send else []
    finally:
        conn.close()
    report = EvaluationReport(fired, resolved, still_open)
    if send:
        _send(rules, [*fired, *resolved], retry, report)
    return report


def _send(rules: AlertsFile, events: list[AlertEvent], retry: list[tuple[AlertEvent, str, int]],
          report: EvaluationReport) -> None:
    by_label = {destination_label(i, d): d for i, d in enumerate(rules.destinations)}
    outcomes = []  # (alert_id, event, label, attempts, error, new)
    for event in events:
        for label, destination in by_label.items():
            attempts, error = deliver(destination, event)
            outcomes.append((event.alert_id, event.event, label, attempts, error, True))
    for event, label, before in retry:
        if label in by_label:
            attempts, error = deliver(by_label[label], event)
            outcomes.append((event.alert_id, event.event, label, before + attempts, error, False))
    report.delivered = sum(1 for o in outcomes if o[4] is None)
    report.failed_deliveries = len(outcomes) - report.delivered
    if not outcomes:
        return
    conn = connect()
    try:
        now = datetime.now(UTC)
        for alert_id, event, label, attempts, error, new in outcomes:
            if new:
                ops.append("alert_deliveries", [{"alert_id": alert_id, "event": event, "destination": label,
                                                 "attempts": attempts, "delivered": error is None,
                                                 "last_error": error, "updated_at": now}], conn)
            else:
                conn.execute("""update ops.alert_deliveries set attempts = ?, delivered = ?, last_error = ?,
                                updated_at = ? where alert_id = ? and event = ? and destination = ?""",
                             [attempts, error is None, error, now, alert_id, event, label])
    finally:
        conn.close()


def open_alerts(conn=None) -> list[dict]:
    """Open rule alerts, newest first: what `canonry status` and the health page show."""
    own = conn is None
    conn = conn or connect()
    try:
        ops.ensure_tables(conn)
        cursor = conn.execute("""select a.alert_id, s.rule_id, a.connection_id, a.severity, a.message,
                                        a.error_class, s.runbook, s.opened_at
                                 from ops.alert_rules_state s join ops.alerts a using (alert_id)
                                 where s.status = 'open' order by s.opened_at desc""")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        if own:
            conn.close()


def after_run(run_id: str | None = None) -> EvaluationReport | None:
    """The hook a sync calls after recording its run: evaluates the rules file if there is one. Never raises:
    a broken rules file or receiver is logged, the sync's outcome stands."""
    try:
        rules = load_alerts()
        if rules is None or not rules.rules:
            return None
        report = evaluate(rules, run_id=run_id)
        if report.fired or report.resolved:
            log.info("alert rules: %s", report.summary())
        return report
    except Exception as exc:  # noqa: BLE001 - alerting must never fail the pipeline
        log.warning("alert rules not evaluated after run %s: %s", run_id, exc)
        return None
