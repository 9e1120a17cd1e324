# Note: no `from __future__ import annotations` here: Dagster inspects the context annotation at runtime.
"""Asset checks on the canonical tables.

- `ge_<table>`: the GE gate, blocking (a failure stops the reverse-ETL pushes downstream). Its rows in
  `ops.validation_results` carry the Dagster run id, so a failed check links to its run.
- `fresh_<table>`: each connection feeding the table synced successfully within two intervals of its
  schedule. One step reads the warehouse read-only; a stale connection raises an alert in `ops.alerts`
  (what `canonry status` shows). Dagster's `build_last_update_freshness_checks` would watch the table as a
  whole: a table fed by two connections stays fresh while one of them stopped, which is what this misses.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    multi_asset_check,
)

from canonry.config import Connection
from dagster_project.concurrency import warehouse_op_tags, warehouse_pool

MISSED_INTERVALS = 2


def gate_checks(tables: list[str]):
    """`ge_<table>` for each table, in one step (Great Expectations' import alone costs seconds per process).
    A failed (blocking) check fails the step: nothing downstream of the tables it gates is pushed."""
    specs = [AssetCheckSpec(f"ge_{t}", asset=AssetKey(["canonical", t]), blocking=True,
                            description=f"Great Expectations suite canonical.{t}") for t in tables]

    @multi_asset_check(specs=specs, name="canonical_ge_gate", can_subset=True, pool=warehouse_pool(),
                       op_tags=warehouse_op_tags())
    def check(context: AssetCheckExecutionContext):
        from canonry import ops
        from canonry.warehouse import connect
        from expectations.gate import validate_table

        run_id = context.run.run_id
        for key in sorted(context.selected_asset_check_keys, key=lambda k: k.name):
            table = key.asset_key.path[-1]
            conn = connect()
            try:
                results = validate_table(table, conn)
                ops.append("validation_results", [{
                    "run_id": run_id, "suite": f"canonical.{table}", "table_name": table,
                    "expectation": r.expectation, "column_name": r.column, "success": r.success,
                    "observed": r.observed, "unexpected_count": r.unexpected_count,
                    "evaluated_at": datetime.now(UTC)} for r in results], conn)
            finally:
                conn.close()
            failed = [r for r in results if not r.success]
            yield AssetCheckResult(
                asset_key=key.asset_key, check_name=key.name, passed=not failed,
                severity=AssetCheckSeverity.ERROR,
                metadata={"expectations": len(results), "failed": [f"{r.expectation}({r.column})" for r in failed],
                          "dagster_run_id": run_id},
            )

    return check


def schedule_interval(cron: str, now: datetime | None = None) -> timedelta:
    """The time between the schedule's two latest ticks."""
    from croniter import croniter

    ticks = croniter(cron, now or datetime.now(UTC))
    last = ticks.get_prev(datetime)
    return last - ticks.get_prev(datetime)


@dataclass
class Staleness:
    connection_id: str
    table: str
    last_success: datetime | None
    limit: timedelta

    def describe(self, now: datetime) -> str:
        age = "never synced" if self.last_success is None else f"last synced {now - self.last_success} ago"
        return (f"canonical.{self.table}: connection={self.connection_id} {age}; its schedule allows "
                f"{self.limit} ({MISSED_INTERVALS} intervals)")


def last_successes(connection_ids: list[str]) -> dict[str, datetime]:
    """connection id -> finish time of its latest successful sync (read-only)."""
    from canonry.warehouse import connect, warehouse_path

    if not warehouse_path().exists():
        return {}
    conn = connect(read_only=True)
    try:
        exists = conn.execute("select count(*) from information_schema.tables where table_schema = 'ops' "
                              "and table_name = 'sync_runs'").fetchone()[0]
        if not exists:
            return {}
        rows = conn.execute("select connection_id, max(finished_at) from ops.sync_runs where status = 'success' "
                            "group by connection_id").fetchall()
    finally:
        conn.close()
    return {cid: finished for cid, finished in rows if cid in connection_ids}


def stale(table: str, feeders: list[Connection], successes: dict[str, datetime], now: datetime) -> list[Staleness]:
    """The connections feeding `table` whose latest success is older than two schedule intervals. A
    connection that never synced is not stale (nothing it promised is there yet)."""
    out = []
    for connection in feeders:
        limit = MISSED_INTERVALS * schedule_interval(connection.schedule, now)
        last = successes.get(connection.id)
        if last is not None and now - last > limit:
            out.append(Staleness(connection.id, table, last, limit))
    return out


def freshness_checks(feeders_by_table: dict[str, list[Connection]]):
    """One step checking every canonical table some scheduled connection feeds."""
    specs = [AssetCheckSpec(f"fresh_{t}", asset=AssetKey(["canonical", t]),
                            description=f"every connection feeding canonical.{t} synced within "
                                        f"{MISSED_INTERVALS} intervals of its schedule")
             for t in feeders_by_table]

    @multi_asset_check(specs=specs, name="canonical_freshness", can_subset=True, pool=warehouse_pool(),
                       op_tags=warehouse_op_tags())
    def check(context: AssetCheckExecutionContext):
        from canonry import ops

        now = datetime.now(UTC)
        ids = sorted({c.id for feeders in feeders_by_table.values() for c in feeders})
        successes = last_successes(ids)
        alerts: dict[str, list[Staleness]] = {}
        for key in context.selected_asset_check_keys:
            table = key.asset_key.path[-1]
            found = stale(table, feeders_by_table[table], successes, now)
            for item in found:
                alerts.setdefault(item.connection_id, []).append(item)
            yield AssetCheckResult(
                asset_key=key.asset_key, check_name=key.name, passed=not found,
                severity=AssetCheckSeverity.WARN,
                description="; ".join(s.describe(now) for s in found) or None,
                metadata={"connections": [c.id for c in feeders_by_table[table]],
                          "stale": [s.connection_id for s in found]})
        ops.append("alerts", [{
            "alert_id": uuid.uuid4().hex[:12], "raised_at": now, "source": "freshness", "severity": "warning",
            "job_name": context.run.job_name, "run_id": context.run.run_id, "connection_id": connection_id,
            "error_class": "stale",
            "message": f"{len(items)} canonical table(s) stale: " + "; ".join(s.describe(now) for s in items),
        } for connection_id, items in alerts.items()])

    return check
