"""The `ops` schema: sync runs, errors, API calls, connections, connection state, validation results, and
the reverse-ETL push state, push log and push runs (written by canonry/reverse_etl).

Written after each step finishes (DuckDB allows one writer per file), never holding credentials:
only ids, classes, counts and messages that went through the redaction filter.

`ops.sync_runs` — one row per run. A run writes its row as `running` (with its pid and host) when it
starts, updates it after each checkpoint, and replaces it when it ends (success | partial | failed |
stalled). A `running` row whose process is gone (SIGKILL, OOM, a crash) is marked `killed` by the next
run or `canonry status`, keeping its last checkpoint (checkpoints, load_ids, records).

`ops.connection_state` — one row per connection, its lifecycle state (what `canonry status` shows):

| state | set by | meaning |
|---|---|---|
| `active` | a successful sync; `canonry connect` | credentials work |
| `needs_reauth` | a sync failing with `auth_expired` (e.g. `invalid_grant` on refresh) | its syncs stop until `canonry connect <id>` |
| `misconfigured` | `permission_denied` / `config_error` | fix scopes or the connections file |
| `degraded` | `quota_exhausted` | resumes in the next window |
| `failing` | `provider_contract` | see ops.sync_errors |
| `disconnected` | `canonry disconnect` | tokens revoked and deleted |

The state of an error class comes from `canonry.errors.POLICIES[...].connection_state`; classes with no
state (transient, rate_limited, data_error) leave it unchanged. The OAuth layer also marks the token set
itself `needs_reauth` (see canonry/oauth_tokens.py), so a sync fails fast even before the warehouse is read.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from canonry.secrets import redact
from canonry.warehouse import connect

DDL: dict[str, str] = {
    # created_at: when the connection was first seen (kept across syncs: time to first successful sync).
    "connections": """connection_id VARCHAR PRIMARY KEY, tenant_id VARCHAR, provider VARCHAR,
        updated_at TIMESTAMPTZ, created_at TIMESTAMPTZ""",
    "connection_state": """connection_id VARCHAR PRIMARY KEY, state VARCHAR, reason VARCHAR, error_class VARCHAR,
        updated_at TIMESTAMPTZ""",
    "sync_runs": """run_id VARCHAR, connection_id VARCHAR, provider VARCHAR, started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ, status VARCHAR, mode VARCHAR, records JSON, calls INTEGER, retries INTEGER,
        throttled INTEGER, duration_s DOUBLE, load_ids JSON, error_class VARCHAR, error_message VARCHAR,
        error_endpoint VARCHAR, checkpoints INTEGER, recovered JSON, stalled BOOLEAN, connection_state VARCHAR,
        error_classes JSON, pid INTEGER, host VARCHAR, trace_id VARCHAR""",
    "sync_errors": """run_id VARCHAR, connection_id VARCHAR, provider VARCHAR, endpoint VARCHAR, status INTEGER,
        error_class VARCHAR, message VARCHAR, occurred_at TIMESTAMPTZ, retried BOOLEAN, final BOOLEAN""",
    "api_calls": """run_id VARCHAR, connection_id VARCHAR, provider VARCHAR, method VARCHAR, endpoint VARCHAR,
        calls INTEGER, retries INTEGER, throttled INTEGER, errors INTEGER, latency_ms DOUBLE, statuses JSON,
        status INTEGER, attempt INTEGER, latency_max_ms DOUBLE""",
    "alerts": """alert_id VARCHAR, raised_at TIMESTAMPTZ, source VARCHAR, severity VARCHAR, job_name VARCHAR,
        run_id VARCHAR, connection_id VARCHAR, error_class VARCHAR, message VARCHAR""",
    # Alerts of the rules in alerts.yml (canonry/alerting): one open row per rule and connection, resolved when
    # the rule no longer fires; each event (firing, resolved) per destination in alert_deliveries.
    "alert_rules_state": """alert_id VARCHAR PRIMARY KEY, rule_id VARCHAR, connection_id VARCHAR, status VARCHAR,
        opened_at TIMESTAMPTZ, resolved_at TIMESTAMPTZ, last_seen_at TIMESTAMPTZ, runbook VARCHAR""",
    "alert_deliveries": """alert_id VARCHAR, event VARCHAR, destination VARCHAR, attempts INTEGER,
        delivered BOOLEAN, last_error VARCHAR, updated_at TIMESTAMPTZ""",
    # canonry canary: one cheap authenticated read per probe (canonry/canary.py)
    "canary_runs": """run_id VARCHAR, connection_id VARCHAR, provider VARCHAR, probed_at TIMESTAMPTZ, ok BOOLEAN,
        status INTEGER, latency_ms DOUBLE, error_class VARCHAR, message VARCHAR, trace_id VARCHAR""",
    # Outbound change events (canonry/events): per table and canonical id the hash of the record as last
    # captured; each capture; each event (the exact body sent); per subscriber and event the delivery state
    # (pending -> delivered | dead); every attempt (status, latency, error class; never a header or secret).
    "event_state": """table_name VARCHAR, record_id VARCHAR, tenant_id VARCHAR, is_deleted BOOLEAN,
        row_hash VARCHAR""",
    "event_captures": """captured_at TIMESTAMPTZ, baseline BOOLEAN, events INTEGER, deliveries INTEGER""",
    "change_events": """event_id VARCHAR PRIMARY KEY, seq BIGINT, event_type VARCHAR, tenant_id VARCHAR,
        table_name VARCHAR, record_id VARCHAR, occurred_at TIMESTAMPTZ, payload VARCHAR""",
    "deliveries": """subscriber_id VARCHAR, event_id VARCHAR, seq BIGINT, record_key VARCHAR, status VARCHAR,
        attempts INTEGER, next_attempt_at TIMESTAMPTZ, last_status INTEGER, last_error VARCHAR,
        updated_at TIMESTAMPTZ, delivered_at TIMESTAMPTZ, PRIMARY KEY (subscriber_id, event_id)""",
    "delivery_attempts": """subscriber_id VARCHAR, event_id VARCHAR, attempt INTEGER, attempted_at TIMESTAMPTZ,
        status INTEGER, ok BOOLEAN, latency_ms DOUBLE, error VARCHAR""",
    "replays": """replay_id VARCHAR, connection_id VARCHAR, from_load_id VARCHAR, started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ, success BOOLEAN, changes JSON""",
    "validation_results": """run_id VARCHAR, suite VARCHAR, table_name VARCHAR, expectation VARCHAR,
        column_name VARCHAR, success BOOLEAN, observed VARCHAR, unexpected_count BIGINT, evaluated_at TIMESTAMPTZ""",
    # Reverse ETL (canonry/reverse_etl): the last state each record was pushed in (one row per record), every
    # write attempt per record (in_flight before the request, then written / rejected / verified), and runs.
    "push_state": """model VARCHAR, connection_id VARCHAR, record_key VARCHAR, external_id VARCHAR,
        provider_id VARCHAR, record_hash VARCHAR, idempotency_key VARCHAR, pushed_at TIMESTAMPTZ, run_id VARCHAR,
        field_values JSON, PRIMARY KEY (model, connection_id, record_key)""",
    "push_log": """run_id VARCHAR, model VARCHAR, connection_id VARCHAR, provider VARCHAR, record_key VARCHAR,
        idempotency_key VARCHAR, operation VARCHAR, status VARCHAR, provider_id VARCHAR, batch INTEGER,
        message VARCHAR, logged_at TIMESTAMPTZ, error_class VARCHAR""",
    # Records rejected `max_attempts` times in a row are parked (left out of pushes) until `--retry-parked`.
    "push_quarantine": """model VARCHAR, connection_id VARCHAR, record_key VARCHAR, failures INTEGER,
        parked BOOLEAN, last_message VARCHAR, updated_at TIMESTAMPTZ,
        PRIMARY KEY (model, connection_id, record_key)""",
    # The audit trail (canonry/governance/audit.py): append-only, who/what moved which data where.
    "audit_log": """logged_at TIMESTAMPTZ, actor VARCHAR, action VARCHAR, target VARCHAR, tenant_id VARCHAR,
        records BIGINT, run_id VARCHAR, details JSON""",
    # DSAR erasures (canonry/governance/dsar.py): records a sync must not load again (until the provider
    # deletes them itself); the subject is named by the sha256 of their email.
    "dsar_tombstones": """connection_id VARCHAR, raw_table VARCHAR, remote_id VARCHAR, subject_sha256 VARCHAR,
        erased_at TIMESTAMPTZ""",
    "push_runs": """run_id VARCHAR, model VARCHAR, connection_id VARCHAR, provider VARCHAR, started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ, status VARCHAR, inserts INTEGER, updates INTEGER, deletes INTEGER,
        written INTEGER, rejected INTEGER, verified INTEGER, calls INTEGER, error_class VARCHAR,
        error_message VARCHAR, trace_id VARCHAR""",
    # Rollouts (canonry/rollout): paused connections (objects null: the whole connection), every run a pause
    # skipped (by sync, a Dagster schedule or run, a webhook drain, a push), and the code version that built
    # each canonical table at each promote / rollback.
    "pauses": """connection_id VARCHAR PRIMARY KEY, objects JSON, reason VARCHAR, paused_by VARCHAR,
        paused_at TIMESTAMPTZ""",
    "pause_skips": """connection_id VARCHAR, skipped_at TIMESTAMPTZ, skipped_by VARCHAR, objects JSON,
        reason VARCHAR, paused_by VARCHAR, paused_at TIMESTAMPTZ""",
    "rollout_versions": """version_id VARCHAR, table_name VARCHAR, action VARCHAR, git_commit VARCHAR,
        git_dirty BOOLEAN, manifest_hash VARCHAR, connections JSON, recorded_at TIMESTAMPTZ, recorded_by VARCHAR""",
    # the dbt code each connection's canonical rows were put live with by a promote / rollback that the
    # checkout's code does not build: ordinary builds refuse to rebuild those rows with other code
    "rollout_pins": """connection_id VARCHAR PRIMARY KEY, manifest_hash VARCHAR, git_commit VARCHAR,
        git_dirty BOOLEAN, action VARCHAR, pinned_at TIMESTAMPTZ, pinned_by VARCHAR""",
}


TABLE_CONSTRAINTS = ("PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "CONSTRAINT")


def _columns(ddl: str) -> list[tuple[str, str]]:
    """(name, type) of each column definition; table constraints (`PRIMARY KEY (a, b)`) are not columns."""
    parts, depth, current = [], 0, ""
    for char in ddl:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    out = []
    for part in parts:
        words = part.split()
        if len(words) >= 2 and words[0].upper() not in TABLE_CONSTRAINTS:
            out.append((words[0], words[1]))
    return out


# DuckDB type names PostgreSQL spells otherwise.
POSTGRES_TYPES = {"DOUBLE": "DOUBLE PRECISION"}


def _dialect_ddl(conn, columns: str) -> str:
    if getattr(conn, "dialect", "duckdb") != "postgres":
        return columns
    for duckdb_type, postgres_type in POSTGRES_TYPES.items():
        columns = re.sub(rf"\b{duckdb_type}\b", postgres_type, columns)
    return columns


def ensure_tables(conn) -> None:
    if getattr(conn, "dialect", None) == "postgres":
        from canonry.postgres import ddl_lock
        from canonry.warehouse import postgres_target

        with ddl_lock(postgres_target(), "ops", conn=conn):  # concurrent syncs: one creates, others see it
            _ensure_tables(conn)
    else:
        _ensure_tables(conn)


def _ensure_tables(conn) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS ops")
    # One catalog read for every table: this runs at each warehouse touch (every push, every ops append),
    # and a statement per table made it the larger part of a small push's time.
    existing: dict[str, set[str]] = {}
    for table, column in conn.execute(
            "select table_name, column_name from information_schema.columns where table_schema = 'ops'").fetchall():
        existing.setdefault(table, set()).add(column)
    for table, columns in DDL.items():
        columns = _dialect_ddl(conn, columns)
        if table not in existing:
            conn.execute(f"CREATE TABLE IF NOT EXISTS ops.{table} ({columns})")
            existing[table] = {r[0] for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = 'ops' and table_name = ?",
                [table]).fetchall()}
        # Warehouses created by an earlier version get the columns added since (never dropped).
        for name, kind in _columns(columns):
            if name not in existing[table]:
                conn.execute(f"ALTER TABLE ops.{table} ADD COLUMN {name} {kind}")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict | list):
        return redact(json.dumps(value, default=str))
    return value


def append(table: str, rows: Iterable[dict], conn=None) -> int:
    """Insert rows (dicts keyed by column) into ops.<table>; strings pass the redaction filter."""
    rows = list(rows)
    if not rows:
        return 0
    own = conn is None
    conn = conn or connect()
    try:
        ensure_tables(conn)
        columns: Sequence[str] = list(rows[0])
        placeholders = ", ".join("?" for _ in columns)
        conn.executemany(f"INSERT INTO ops.{table} ({', '.join(columns)}) VALUES ({placeholders})",
                         [[_clean(row.get(c)) for c in columns] for row in rows])
        return len(rows)
    finally:
        if own:
            conn.close()


def _replace(conn, table: str, key: str, values: list) -> None:
    """Insert a row, replacing the row with the same key: DuckDB's `INSERT OR REPLACE`, PostgreSQL's
    `ON CONFLICT … DO UPDATE` (atomic when several sync processes write at once)."""
    placeholders = ", ".join("?" for _ in values)
    if getattr(conn, "dialect", "duckdb") == "postgres":
        names = [name for name, _ in _columns(DDL[table])]
        updates = ", ".join(f"{name} = excluded.{name}" for name in names if name != key)
        conn.execute(f"INSERT INTO ops.{table} VALUES ({placeholders}) "
                     f"ON CONFLICT ({key}) DO UPDATE SET {updates}", values)
    else:
        conn.execute(f"INSERT OR REPLACE INTO ops.{table} VALUES ({placeholders})", values)


def upsert_connection(connection_id: str, tenant_id: str, provider: str, conn=None) -> None:
    own = conn is None
    conn = conn or connect()
    try:
        ensure_tables(conn)
        now = datetime.now(UTC)
        # created_at is written once; a row from before the column existed keeps NULL (metrics fall back to
        # its first run).
        conn.execute("""INSERT INTO ops.connections (connection_id, tenant_id, provider, updated_at, created_at)
                        VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT (connection_id) DO UPDATE SET tenant_id = excluded.tenant_id,
                            provider = excluded.provider, updated_at = excluded.updated_at""",
                     [connection_id, tenant_id, provider, now, now])
    finally:
        if own:
            conn.close()


CONNECTION_STATES = ("active", "needs_reauth", "misconfigured", "degraded", "failing", "disconnected")


def set_connection_state(connection_id: str, state: str, reason: str | None = None,
                         error_class: str | None = None, conn=None) -> None:
    """Record a connection's lifecycle state (one row per connection, last write wins)."""
    if state not in CONNECTION_STATES:
        raise ValueError(f"unknown connection state {state!r}; one of {', '.join(CONNECTION_STATES)}")
    own = conn is None
    conn = conn or connect()
    try:
        ensure_tables(conn)
        _replace(conn, "connection_state", "connection_id",
                     [connection_id, state, _clean(reason), error_class, datetime.now(UTC)])
    finally:
        if own:
            conn.close()


def connection_states(conn=None) -> dict[str, dict]:
    """connection_id -> {state, reason, error_class, updated_at}."""
    own = conn is None
    conn = conn or connect()
    try:
        ensure_tables(conn)
        rows = conn.execute("SELECT connection_id, state, reason, error_class, updated_at "
                            "FROM ops.connection_state").fetchall()
    finally:
        if own:
            conn.close()
    return {r[0]: {"state": r[1], "reason": r[2], "error_class": r[3], "updated_at": r[4]} for r in rows}


# An alert stays open until the connection it names syncs successfully after it was raised; an alert that
# names no connection stays open for a day.
OPEN_ALERTS_SQL = """
    select a.alert_id, a.raised_at, a.source, a.severity, a.connection_id, a.error_class, a.job_name, a.run_id,
           a.message
    from ops.alerts a
    where case when a.connection_id is null then a.raised_at > now() - interval '1 day'
               else not exists (select 1 from ops.sync_runs r where r.connection_id = a.connection_id
                                and r.status = 'success' and r.finished_at > a.raised_at) end
    order by a.raised_at desc
"""


def open_alerts(conn=None) -> list[dict]:
    """Alerts not yet resolved (see OPEN_ALERTS_SQL), newest first."""
    own = conn is None
    conn = conn or connect()
    try:
        ensure_tables(conn)
        cursor = conn.execute(OPEN_ALERTS_SQL)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        if own:
            conn.close()


def start_run(run_id: str, connection_id: str, provider: str, started_at: datetime, mode: str, conn) -> None:
    """Record a run as `running` before it fetches anything: a run killed later still leaves its row."""
    append("sync_runs", [{"run_id": run_id, "connection_id": connection_id, "provider": provider,
                          "started_at": started_at, "status": "running", "mode": mode, "checkpoints": 0,
                          "load_ids": [], "records": {}, "pid": os.getpid(), "host": socket.gethostname()}], conn)


def update_run(run_id: str, conn, **progress: Any) -> None:
    """Update a running run's progress (checkpoints, load_ids, records) after a checkpoint."""
    assignments = ", ".join(f"{column} = ?" for column in progress)
    conn.execute(f"UPDATE ops.sync_runs SET {assignments} WHERE run_id = ? AND status = 'running'",
                 [_clean(v) for v in progress.values()] + [run_id])


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True   # a process of another user has that pid: cannot tell, assume alive
    return True


def mark_killed_runs(conn) -> list[str]:
    """Mark `running` rows of this host whose process is gone as `killed` (their last checkpoint kept);
    returns their run ids. Rows of other hosts are left alone (their pid means nothing here)."""
    ensure_tables(conn)
    host = socket.gethostname()
    rows = conn.execute("SELECT run_id, pid, checkpoints, started_at FROM ops.sync_runs "
                        "WHERE status = 'running' AND host = ?", [host]).fetchall()
    killed = []
    for run_id, pid, checkpoints, started_at in rows:
        if pid == os.getpid() or _alive(pid):
            continue
        now = datetime.now(UTC)
        message = (f"killed: process {pid} ended without recording its run (SIGKILL, out of memory, a crash) "
                   f"after {checkpoints or 0} checkpoint(s); the next run resumes from the last one")
        conn.execute("UPDATE ops.sync_runs SET status = 'killed', finished_at = ?, error_message = ?, "
                     "duration_s = ?, error_classes = ? WHERE run_id = ? AND status = 'running'",
                     [now, message, (now - started_at).total_seconds() if started_at else None, "[]", run_id])
        killed.append(run_id)
    return killed
