"""Retention of the high-volume `ops` tables, so the warehouse does not grow without bound.

What is pruned, and how a row's age is known, is data (`PRUNED`). The per-run summaries that the metrics and
`canonry status` read (`ops.sync_runs`, `push_runs`, `replays`, `alerts`, `connections`) are kept: one row
per run is small. `canonry ops prune [--older-than 90d] [--dry-run]`; the default age comes from
`CANONRY_OPS_RETENTION` (a duration: 30d, 12h), else 90 days.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from canonry import ops
from canonry.durations import parse_duration
from canonry.errors import ConfigError
from canonry.warehouse import connect

DEFAULT_RETENTION = "90d"
# table -> the condition (one `?`: the cutoff) that makes a row old enough to delete
PRUNED: dict[str, str] = {
    "api_calls": "run_id in (select run_id from ops.sync_runs where finished_at < ?)",
    "sync_errors": "occurred_at < ?",
    "push_log": "logged_at < ? and status != 'in_flight'",
    "validation_results": "evaluated_at < ?",
    "alert_deliveries": "updated_at < ?",
    "query_audit": "ts < ?",  # naive UTC timestamps
}
NAIVE_UTC = {"query_audit"}


def retention(value: str | None = None) -> timedelta:
    chosen = value or os.environ.get("CANONRY_OPS_RETENTION") or DEFAULT_RETENTION
    try:
        return parse_duration(chosen)
    except ValueError as exc:
        raise ConfigError(f"ops retention {chosen!r}: {exc}", hint="e.g. --older-than 30d or "
                          "CANONRY_OPS_RETENTION=90d") from None


def prune(older_than: timedelta, *, dry_run: bool = False, now: datetime | None = None) -> dict[str, int]:
    """Delete (or count, with dry_run) the rows older than `older_than`; table -> rows."""
    cutoff = (now or datetime.now(UTC)) - older_than
    conn = connect()
    try:
        ops.ensure_tables(conn)
        present = {r[0] for r in conn.execute("select table_name from information_schema.tables "
                                              "where table_schema = 'ops'").fetchall()}
        counts = {}
        for table, condition in PRUNED.items():
            if table not in present:
                continue
            bound = cutoff.replace(tzinfo=None) if table in NAIVE_UTC else cutoff
            counts[table] = conn.execute(f"select count(*) from ops.{table} where {condition}", [bound]).fetchone()[0]
            if counts[table] and not dry_run:
                conn.execute(f"delete from ops.{table} where {condition}", [bound])
        if not dry_run and any(counts.values()):
            conn.execute("checkpoint")  # give the freed blocks back to the file
        return counts
    finally:
        conn.close()
