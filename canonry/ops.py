"""The `ops` schema: sync runs, errors, API calls, connections, connection state, validation results, and
the reverse-ETL push state, push log and push runs (written by canonry/reverse_etl).

Written after each step finishes (DuckDB allows one writer per file), never holding credentials:
only ids, classes, counts and messages that went through the redaction filter.

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
itself `needs_reauth` (see canonry/oauth.py), so a sync fails fast even before the warehouse is read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from canonry.secrets import redact
from canonry.warehouse import connect

DDL: dict[str, str] = {
    "connections": """connection_id VARCHAR PRIMARY KEY, tenant_id VARCHAR, provider VARCHAR,
        updated_at TIMESTAMPTZ""",
    "connection_state": """connection_id VARCHAR PRIMARY KEY, state VARCHAR, reason VARCHAR, error_class VARCHAR,
        updated_at TIMESTAMPTZ""",
    "sync_runs": """run_id VARCHAR, connection_id VARCHAR, provider VARCHAR, started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ, status VARCHAR, mode VARCHAR, records JSON, calls INTEGER, retries INTEGER,
        throttled INTEGER, duration_s DOUBLE, load_ids JSON, error_class VARCHAR, error_message VARCHAR,
        error_endpoint VARCHAR, checkpoints INTEGER, recovered JSON, stalled BOOLEAN, connection_state VARCHAR,
        error_classes JSON""",
    "sync_errors": """run_id VARCHAR, connection_id VARCHAR, provider VARCHAR, endpoint VARCHAR, status INTEGER,
        error_class VARCHAR, message VARCHAR, occurred_at TIMESTAMPTZ, retried BOOLEAN, final BOOLEAN""",
    "api_calls": """run_id VARCHAR, connection_id VARCHAR, provider VARCHAR, method VARCHAR, endpoint VARCHAR,
        calls INTEGER, retries INTEGER, throttled INTEGER, errors INTEGER, latency_ms DOUBLE, statuses JSON,
        status INTEGER, attempt INTEGER, latency_max_ms DOUBLE""",
    "alerts": """alert_id VARCHAR, raised_at TIMESTAMPTZ, source VARCHAR, severity VARCHAR, job_name VARCHAR,
        run_id VARCHAR, connection_id VARCHAR, error_class VARCHAR, message VARCHAR""",
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
    "push_runs": """run_id VARCHAR, model VARCHAR, connection_id VARCHAR, provider VARCHAR, started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ, status VARCHAR, inserts INTEGER, updates INTEGER, deletes INTEGER,
        written INTEGER, rejected INTEGER, verified INTEGER, calls INTEGER, error_class VARCHAR,
        error_message VARCHAR""",
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


def ensure_tables(conn) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS ops")
    for table, columns in DDL.items():
        conn.execute(f"CREATE TABLE IF NOT EXISTS ops.{table} ({columns})")
        # Warehouses created by an earlier version get the columns added since (never dropped).
        existing = {r[0] for r in conn.execute(
            "select column_name from information_schema.columns where table_schema = 'ops' and table_name = ?",
            [table]).fetchall()}
        for name, kind in _columns(columns):
            if name not in existing:
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


def upsert_connection(connection_id: str, tenant_id: str, provider: str, conn=None) -> None:
    own = conn is None
    conn = conn or connect()
    try:
        ensure_tables(conn)
        conn.execute("INSERT OR REPLACE INTO ops.connections VALUES (?, ?, ?, ?)",
                     [connection_id, tenant_id, provider, datetime.now(UTC)])
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
        conn.execute("INSERT OR REPLACE INTO ops.connection_state VALUES (?, ?, ?, ?, ?)",
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
