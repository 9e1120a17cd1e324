"""What each rule kind looks at: one small function per kind, reading `ops` only, returning what fires now.

A `Finding` is "this rule is breached for this connection (or globally) now"; `evaluate` turns findings into
opened, kept and resolved alerts."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from canonry.alerting.rules import (
    FailureRateRule,
    FreshnessRule,
    GuardRejectionsRule,
    NeedsReauthRule,
    ParkedRowsRule,
)
from canonry.durations import format_duration, parse_duration

DEFAULT_SCHEDULE = "0 * * * *"  # the connections file's default


@dataclass(frozen=True)
class Finding:
    rule_id: str
    connection_id: str | None
    severity: str
    message: str
    error_class: str | None = None


@dataclass
class Context:
    now: datetime
    schedules: dict[str, str] = field(default_factory=dict)  # connection id -> cron


def schedule_interval(cron: str, now: datetime) -> timedelta:
    """The interval between the next two runs of a cron schedule."""
    from croniter import croniter

    it = croniter(cron, now)
    first = it.get_next(datetime)
    return it.get_next(datetime) - first


def _connections(conn, rule) -> list[tuple[str, str, datetime | None]]:
    """(connection id, provider, created_at) of the connections a rule covers (disconnected ones excluded)."""
    rows = conn.execute("""select c.connection_id, c.provider, c.created_at from ops.connections c
                           left join ops.connection_state s using (connection_id)
                           where coalesce(s.state, '') != 'disconnected' order by 1""").fetchall()
    return [r for r in rows if rule.connections is None or r[0] in rule.connections]


def check_freshness(conn, rule: FreshnessRule, ctx: Context) -> list[Finding]:
    out = []
    for connection_id, _provider, created_at in _connections(conn, rule):
        last_success, last_class = conn.execute(
            """select max(finished_at) filter (where status = 'success'),
                      arg_max(error_class, finished_at) from ops.sync_runs where connection_id = ?""",
            [connection_id]).fetchone()
        since = last_success or created_at
        if since is None:
            continue
        if rule.max_age is not None:
            limit = parse_duration(rule.max_age)
            slo = f"max age {format_duration(limit.total_seconds())}"
        else:
            interval = schedule_interval(ctx.schedules.get(connection_id, DEFAULT_SCHEDULE), ctx.now)
            limit = interval * rule.max_intervals
            slo = f"{rule.max_intervals:g} schedule intervals = {format_duration(limit.total_seconds())}"
        age = ctx.now - since
        if age > limit:
            what = "last successful sync" if last_success else "no successful sync since creation"
            out.append(Finding(rule.id, connection_id, rule.severity,
                               f"stale: {what} {format_duration(age.total_seconds())} ago (SLO: {slo})", last_class))
    return out


def check_failure_rate(conn, rule: FailureRateRule, ctx: Context) -> list[Finding]:
    out = []
    since = ctx.now - parse_duration(rule.window)
    for connection_id, _provider, _created in _connections(conn, rule):
        runs = conn.execute("select status, error_class from ops.sync_runs where connection_id = ? "
                            "and finished_at >= ?", [connection_id, since]).fetchall()
        failed = [r[1] for r in runs if r[0] != "success"]
        if len(runs) >= rule.min_runs and len(failed) / len(runs) >= rule.threshold:
            top = Counter(c for c in failed if c).most_common(1)
            out.append(Finding(rule.id, connection_id, rule.severity,
                               f"{len(failed)} of {len(runs)} runs failed in the last {rule.window} "
                               f"(threshold {rule.threshold:.0%})", top[0][0] if top else None))
    return out


def check_needs_reauth(conn, rule: NeedsReauthRule, ctx: Context) -> list[Finding]:
    covered = {r[0] for r in _connections(conn, rule)}
    rows = conn.execute("select connection_id, reason from ops.connection_state where state = 'needs_reauth' "
                        "order by 1").fetchall()
    return [Finding(rule.id, connection_id, rule.severity, f"needs re-authorisation: {reason or 'auth expired'}",
                    "auth_expired") for connection_id, reason in rows if connection_id in covered]


def _table_exists(conn, schema: str, table: str) -> bool:
    return bool(conn.execute("select count(*) from information_schema.tables where table_schema = ? and "
                             "table_name = ?", [schema, table]).fetchone()[0])


def parked_rows(conn) -> dict[str, int]:
    """connection id -> parked records: reverse-ETL records whose last push attempt was rejected, plus
    quarantined rows (ops.quarantine, when the warehouse has it)."""
    counts: Counter[str] = Counter()
    for connection_id, n in conn.execute("""
            select connection_id, count(*) from (
                select connection_id, arg_max(status, logged_at) as last_status
                from ops.push_log where status in ('written', 'rejected', 'verified')
                group by model, connection_id, record_key)
            where last_status = 'rejected' group by 1""").fetchall():
        counts[connection_id] += n
    if _table_exists(conn, "ops", "quarantine"):
        columns = {r[0] for r in conn.execute("select column_name from information_schema.columns where "
                                              "table_schema = 'ops' and table_name = 'quarantine'").fetchall()}
        if "connection_id" in columns:
            for connection_id, n in conn.execute("select connection_id, count(*) from ops.quarantine "
                                                 "group by 1").fetchall():
                counts[connection_id] += n
    return dict(counts)


def check_parked_rows(conn, rule: ParkedRowsRule, ctx: Context) -> list[Finding]:
    covered = {r[0] for r in _connections(conn, rule)}
    return [Finding(rule.id, connection_id, rule.severity, f"{n} parked records (more than {rule.max})",
                    "data_error")
            for connection_id, n in sorted(parked_rows(conn).items()) if n > rule.max and connection_id in covered]


def check_guard_rejections(conn, rule: GuardRejectionsRule, ctx: Context) -> list[Finding]:
    if not _table_exists(conn, "ops", "query_audit"):
        return []
    since = (ctx.now - parse_duration(rule.window)).astimezone(UTC).replace(tzinfo=None)  # ts is naive UTC
    rows = conn.execute("select codes from ops.query_audit where verdict = 'reject' and ts >= ?",
                        [since]).fetchall()
    if len(rows) <= rule.max:
        return []
    codes = Counter(code for (text,) in rows for code in json.loads(text or "[]")).most_common(3)
    top = ", ".join(f"{code} ×{n}" for code, n in codes)
    return [Finding(rule.id, None, rule.severity, f"{len(rows)} guard rejections in the last {rule.window} "
                    f"(more than {rule.max}){': ' + top if top else ''}")]


CHECKS: dict[str, Callable[..., list[Finding]]] = {
    "freshness": check_freshness,
    "failure_rate": check_failure_rate,
    "needs_reauth": check_needs_reauth,
    "parked_rows": check_parked_rows,
    "guard_rejections": check_guard_rejections,
}
