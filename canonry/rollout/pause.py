"""Pause and resume a connection (or some of its objects) without editing its schedule or the connections
file. The state lives in `ops.pauses` (who, when, why); every run a pause holds back is recorded in
`ops.pause_skips` with the pause's reason, so a skipped run is visible rather than silently absent.

Honoured by `canonry sync`, the connection's Dagster schedule (a tick is a SkipReason naming the pause) and
its runs (the raw step syncs nothing for a paused connection), `canonry webhooks drain` (events of a paused
connection, or touching a paused object, stay pending in the journal until a drain after the resume),
reverse-ETL pushes and a sync's own push schedule (a paused connection is not written).
Resuming changes nothing else: the next incremental sync starts from the connection's cursors, so it picks
up everything that changed in the provider while it was paused."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from canonry import ops
from canonry.config import Connection
from canonry.rollout.pins import who
from canonry.warehouse import connect, postgres_url, warehouse_path


@dataclass(frozen=True)
class Pause:
    connection_id: str
    objects: tuple[str, ...] | None   # None: the whole connection
    reason: str | None
    paused_by: str | None
    paused_at: datetime | None

    def describe(self) -> str:
        what = f"objects {', '.join(self.objects)} of " if self.objects else ""
        when = self.paused_at.isoformat(timespec="seconds") if self.paused_at else "?"
        return (f"{what}{self.connection_id} paused by {self.paused_by or '?'} at {when}: "
                f"{self.reason or 'no reason given'}")


def pause(connection_id: str, objects: list[str] | None = None, reason: str | None = None,
          paused_by: str | None = None) -> Pause:
    """Pause a connection (or only `objects` of it); a second pause replaces the first."""
    record = Pause(connection_id, tuple(objects) if objects else None, reason, paused_by or who(),
                   datetime.now(UTC))
    conn = connect(purpose="canonry pause")
    try:
        ops.ensure_tables(conn)
        conn.execute("delete from ops.pauses where connection_id = ?", [connection_id])
        conn.execute("insert into ops.pauses values (?, ?, ?, ?, ?)",
                     [connection_id, json.dumps(list(record.objects)) if record.objects else None,
                      ops._clean(reason), record.paused_by, record.paused_at])
    finally:
        conn.close()
    return record


def resume(connection_id: str) -> Pause | None:
    """Lift a connection's pause; returns the pause lifted (None: it was not paused)."""
    conn = connect(purpose="canonry resume")
    try:
        ops.ensure_tables(conn)
        lifted = _pauses(conn).get(connection_id)
        conn.execute("delete from ops.pauses where connection_id = ?", [connection_id])
    finally:
        conn.close()
    return lifted


def _pauses(conn) -> dict[str, Pause]:
    rows = conn.execute("select connection_id, objects, reason, paused_by, paused_at from ops.pauses").fetchall()
    out = {}
    for cid, objects, reason, by, at in rows:
        listed = json.loads(objects) if isinstance(objects, str) else objects
        out[cid] = Pause(cid, tuple(listed) if listed else None, reason, by, at)
    return out


def pauses(conn=None) -> dict[str, Pause]:
    """connection id -> its pause, for every paused connection (none before the warehouse exists)."""
    if conn is None and not postgres_url() and not warehouse_path().exists():
        return {}
    own = conn is None
    conn = conn or connect(purpose="reading pauses")
    try:
        ops.ensure_tables(conn)
        return _pauses(conn)
    finally:
        if own:
            conn.close()


def record_skip(paused: Pause, skipped_by: str, conn=None) -> None:
    """One row in ops.pause_skips: what a pause held back, and why."""
    ops.append("pause_skips", [{
        "connection_id": paused.connection_id, "skipped_at": datetime.now(UTC), "skipped_by": skipped_by,
        "objects": list(paused.objects) if paused.objects else None, "reason": paused.reason,
        "paused_by": paused.paused_by, "paused_at": paused.paused_at}], conn)


def provider_objects(provider: str) -> list[str]:
    return list(importlib.import_module(f"sources.{provider}.settings").OBJECTS)


def unpaused(connection: Connection, paused: Pause | None) -> Connection | None:
    """The connection as a run may sync it: itself (not paused), narrowed to its objects that are not
    paused, or None (the whole connection, or every object it syncs, is paused)."""
    if paused is None:
        return connection
    if paused.objects is None:
        return None
    keep = [o for o in (connection.objects or provider_objects(connection.provider)) if o not in paused.objects]
    return connection.model_copy(update={"objects": keep}) if keep else None


def check_objects(connection: Connection, objects: list[str]) -> list[str]:
    """The objects named in `--objects` that the connection's provider does not have."""
    known = set(provider_objects(connection.provider))
    return [o for o in objects if o not in known]


def apply_pauses(connections: list[Connection], skipped_by: str) -> tuple[list[Connection], list[Pause]]:
    """The connections a run may sync (narrowed where objects are paused) and the pauses that held
    something back (each recorded in ops.pause_skips)."""
    current = pauses()
    kept, held = [], []
    for connection in connections:
        paused = current.get(connection.id)
        allowed = unpaused(connection, paused)
        if paused is not None:
            record_skip(paused, skipped_by)
            held.append(paused)
        if allowed is not None:
            kept.append(allowed)
    return kept, held
