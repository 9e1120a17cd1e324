"""Retention of raw versions: `keep: latest + <window>`.

Raw keeps every version of every record the providers ever sent (replay, trace). A version goes when it is
*superseded* (the same connection holds a later version of the record, by `remote_updated_at` then load id)
and older than the window (its `extracted_at`); every record's latest version is always kept, so `canonry
replay` still rebuilds the current canonical state from raw alone.

The window is per connection: `canonry retention apply --keep <connection>=30d`, else the connection's
`raw_retention` in the connections file, else the default `--default`, `CANONRY_RAW_RETENTION`, or 90 days. Raw tables that are not payload tables (dlt's own, the key-scan snapshots) are left alone.
The `ops` tables are pruned by their own windows in the same step (canonry/retention.py), and the audit log
by `CANONRY_AUDIT_RETENTION` (default a year: an audit trail outlives what it describes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from canonry import ops
from canonry.config import parse_duration
from canonry.errors import ConfigError
from canonry.governance import audit
from canonry.warehouse import connect

DEFAULT_RAW_RETENTION = "90d"
DEFAULT_AUDIT_RETENTION = "365d"
RAW_COLUMNS = {"connection_id", "remote_id", "remote_updated_at", "payload", "extracted_at", "_dlt_load_id"}


def window(value: str | None, variable: str, default: str) -> timedelta:
    chosen = value or os.environ.get(variable) or default
    try:
        return parse_duration(chosen)
    except ValueError as exc:
        raise ConfigError(f"retention {chosen!r}: {exc}", hint=f"a duration such as 30d or 12h ({variable})") from None


def configured_windows(config: str | os.PathLike | None = None) -> dict[str, timedelta]:
    """connection id -> its `raw_retention` from the connections file ({} when there is no file yet). A file
    that does not validate is a ConfigError listing its problems: a window must never be guessed."""
    from canonry.config import config_path
    from canonry.validation import load_connections

    if not config_path(config).exists():
        return {}
    model = load_connections(config, require_tokens=False, builds_canonical=False)  # retention windows only
    return {c.id: parse_duration(c.raw_retention) for c in model.connections if c.raw_retention is not None}


@dataclass
class RetentionReport:
    raw: dict[str, int] = field(default_factory=dict)  # "raw_<slug>.<table> <connection>" -> versions
    ops: dict[str, int] = field(default_factory=dict)
    audit: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"raw": self.raw, "ops": self.ops, "audit_log": self.audit, "dry_run": self.dry_run}


def _payload_tables(conn) -> list[tuple[str, str]]:
    rows = conn.execute("select table_schema, table_name, list(column_name) from information_schema.columns "
                        "where table_schema like 'raw_%' group by 1, 2 order by 1, 2").fetchall() \
        if getattr(conn, "dialect", "duckdb") != "postgres" else [
            (s, t, list(c)) for s, t, c in conn.execute(
                "select table_schema, table_name, array_agg(column_name::text) from information_schema.columns "
                "where table_schema like 'raw_%' group by 1, 2 order by 1, 2").fetchall()]
    return [(s, t) for s, t, columns in rows if RAW_COLUMNS <= set(columns) and not t.startswith("_dlt")]


def superseded_condition(schema: str, table: str) -> str:
    """Rows of one connection (`?` 1) superseded by a later version and extracted before the cutoff (`?` 2)."""
    return (f"connection_id = ? and extracted_at < ? and exists (select 1 from {schema}.{table} later "
            f"where later.connection_id = t.connection_id and later.remote_id = t.remote_id and "
            f"(later.remote_updated_at > t.remote_updated_at or (later.remote_updated_at = t.remote_updated_at "
            f"and later._dlt_load_id > t._dlt_load_id) or (t.remote_updated_at is null and "
            f"later._dlt_load_id > t._dlt_load_id)))")


def apply(windows: dict[str, timedelta] | None = None, default: timedelta | None = None, *, dry_run: bool = False,
          now: datetime | None = None) -> RetentionReport:
    """Delete (or count, with dry_run) superseded raw versions older than each connection's window, then
    prune the ops tables and the audit log by theirs."""
    from canonry import retention as ops_retention

    now = now or datetime.now(UTC)
    if default is None:
        default = window(None, "CANONRY_RAW_RETENTION", DEFAULT_RAW_RETENTION)
    windows = windows or {}
    report = RetentionReport(dry_run=dry_run)
    conn = connect(purpose="canonry retention apply")
    try:
        ops.ensure_tables(conn)
        for schema, table in _payload_tables(conn):
            connections = [r[0] for r in conn.execute(f"select distinct connection_id from {schema}.{table}").fetchall()]
            for connection_id in connections:
                cutoff = now - windows.get(connection_id, default)
                where = superseded_condition(schema, table)
                count = conn.execute(f"select count(*) from {schema}.{table} t where {where}",
                                     [connection_id, cutoff]).fetchone()[0]
                if count:
                    report.raw[f"{schema}.{table} {connection_id}"] = count
                    if not dry_run:
                        conn.execute(f"delete from {schema}.{table} t where {where}", [connection_id, cutoff])
        cutoff = now - window(None, "CANONRY_AUDIT_RETENTION", DEFAULT_AUDIT_RETENTION)
        report.audit = conn.execute("select count(*) from ops.audit_log where logged_at < ?", [cutoff]).fetchone()[0]
        if report.audit and not dry_run:
            conn.execute("delete from ops.audit_log where logged_at < ?", [cutoff])
        audit.record("retention", "raw, ops, audit_log", conn, records=sum(report.raw.values()), dry_run=dry_run,
                     raw=report.raw, audit_log=report.audit)
    finally:
        conn.close()
    report.ops = ops_retention.prune(ops_retention.retention(None), dry_run=dry_run, now=now)
    return report
