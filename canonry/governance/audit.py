"""`ops.audit_log`: who or what moved which data where. Append-only: rows are inserted, never updated; only
the audit log's own retention (`CANONRY_AUDIT_RETENTION`, default 365 days) deletes them.

Writers that hold the warehouse (sync, push, DSAR, retention) insert directly. Processes that must not take
the DuckDB writer lock for every event (the read API answers from a snapshot) append JSON lines to a spool
file, `<data dir>/audit/spool.jsonl`; the next writer of the audit log moves the spool into the table.
Rows hold ids, counts and names of places, never the personal values themselves (a DSAR row names the
hash of the email, not the email).
"""

from __future__ import annotations

import getpass
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from canonry import ops

TABLE = "audit_log"
ACTIONS: tuple[str, ...] = ("sync", "push", "api_read", "query", "dsar_find", "dsar_export", "dsar_erase",
                            "retention")
_spool_lock = threading.Lock()


def actor() -> str:
    """Who acts: `CANONRY_ACTOR` (a scheduler or service sets it), else the OS user."""
    explicit = os.environ.get("CANONRY_ACTOR")
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def _row(action: str, target: str, *, records: int | None = None, tenant_id: str | None = None,
         run_id: str | None = None, who: str | None = None, **details: Any) -> dict:
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r} (one of {', '.join(ACTIONS)})")
    return {"logged_at": datetime.now(UTC), "actor": who or actor(), "action": action, "target": target,
            "tenant_id": tenant_id, "records": records, "run_id": run_id, "details": details or None}


def record(action: str, target: str, conn=None, **fields: Any) -> None:
    """Append one audit row (and whatever the spool holds) through `conn` or a connection of its own."""
    rows = [*_drain_spool(), _row(action, target, **fields)]
    ops.append(TABLE, rows, conn)


def spool(action: str, target: str, **fields: Any) -> None:
    """Append one audit row to the spool file (no warehouse connection: the read API's path)."""
    row = _row(action, target, **fields)
    row["logged_at"] = row["logged_at"].isoformat()
    path = spool_path()
    with _spool_lock, path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, default=str) + "\n")


def spool_path() -> Path:
    from canonry.warehouse import data_dir

    path = data_dir() / "audit"
    path.mkdir(parents=True, exist_ok=True)
    return path / "spool.jsonl"


def _drain_spool() -> list[dict]:
    path = spool_path()
    if not path.exists():
        return []
    # Rename first: a reader appending meanwhile starts a new spool file, nothing is read twice or lost.
    taken = path.with_suffix(f".{os.getpid()}.taking")
    with _spool_lock:
        path.rename(taken)
    rows = []
    for line in taken.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            row["logged_at"] = datetime.fromisoformat(row["logged_at"])
            rows.append(row)
    taken.unlink()
    return rows


def flush(conn=None) -> int:
    """Move the spool into ops.audit_log; how many rows moved."""
    rows = _drain_spool()
    return ops.append(TABLE, rows, conn) if rows else 0


def entries(since: datetime | None = None, action: str | None = None, conn=None) -> list[dict]:
    """Audit rows (oldest first), after moving the spool in."""
    from canonry.warehouse import connect

    own = conn is None
    conn = conn or connect(purpose="canonry audit")
    try:
        ops.ensure_tables(conn)
        flush(conn)
        where, params = [], []
        if since is not None:
            where.append("logged_at >= ?")
            params.append(since)
        if action is not None:
            where.append("action = ?")
            params.append(action)
        sql = (f"select logged_at, actor, action, target, tenant_id, records, run_id, details from ops.{TABLE}"
               + (f" where {' and '.join(where)}" if where else "") + " order by logged_at")
        names = ("logged_at", "actor", "action", "target", "tenant_id", "records", "run_id", "details")
        return [dict(zip(names, row, strict=True)) for row in conn.execute(sql, params).fetchall()]
    finally:
        if own:
            conn.close()
