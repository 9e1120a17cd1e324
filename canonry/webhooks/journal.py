"""The intake journal: SQLite in WAL mode under the data dir (`<data dir>/webhooks/intake.sqlite`).

An event is acknowledged (2xx) only after its INSERT has committed with `synchronous=FULL`: a SIGKILL
(or power loss) after the ack loses nothing. `(connection_id, event_id)` is unique, so a provider's retry
of an event already journaled is a no-op. States: pending -> applied | dead (with a reason; `canonry
webhooks replay` puts dead events back to pending).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from canonry.warehouse import data_dir

RETENTION_DAYS = 7

SCHEMA = """
create table if not exists events (
    seq          integer primary key autoincrement,
    connection_id text not null,
    provider     text not null,
    event_id     text not null,
    received_at  real not null,     -- epoch seconds, when the delivery was journaled
    occurred_ms  integer,           -- when it happened at the provider (when the provider says)
    body         blob not null,     -- one event, JSON
    state        text not null default 'pending',
    reason       text,
    drained_at   real,
    unique (connection_id, event_id)
);
create index if not exists events_pending on events (state, seq);
"""


def journal_path() -> Path:
    path = data_dir() / "webhooks"
    path.mkdir(parents=True, exist_ok=True)
    return path / "intake.sqlite"


@dataclass(frozen=True)
class JournaledEvent:
    seq: int
    connection_id: str
    provider: str
    event_id: str
    received_at: float
    occurred_ms: int | None
    body: bytes


class _Append:
    """One delivery's rows waiting for a group commit."""

    __slots__ = ("rows", "added", "error", "done")

    def __init__(self, rows: list[tuple]) -> None:
        self.rows, self.added, self.error, self.done = rows, 0, None, False


class Journal:
    """One SQLite connection, serialised by a lock (the server's handlers and the drain each own one)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or journal_path()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("pragma journal_mode=wal")
        self.db.execute("pragma synchronous=full")  # fsync at every commit: durable before the ack
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()
        self.queue: list[_Append] = []
        self.queue_lock = threading.Lock()

    def close(self) -> None:
        self.db.close()

    def append(self, connection_id: str, provider: str, events: Iterable[tuple[str, int | None, bytes]]) -> int:
        """Journal the events of one delivery; returns how many were new (the rest: retries already here).

        Group commit: deliveries arriving while a commit is under way wait, and the next thread to get the
        lock commits all of them in one transaction (one fsync), so the fsync cost is shared under load.
        A delivery returns only once the transaction holding its rows has committed."""
        now = time.time()
        entry = _Append([(connection_id, provider, event_id, now, occurred, body)
                         for event_id, occurred, body in events])
        with self.queue_lock:
            self.queue.append(entry)
        with self.lock:
            if not entry.done:
                with self.queue_lock:
                    batch, self.queue = self.queue, []
                self._commit(batch)
        if entry.error is not None:
            raise entry.error
        return entry.added

    def _commit(self, batch: list[_Append]) -> None:
        self.db.execute("begin immediate")
        try:
            for item in batch:
                before = self.db.total_changes
                self.db.executemany("insert or ignore into events (connection_id, provider, event_id, received_at,"
                                    " occurred_ms, body) values (?, ?, ?, ?, ?, ?)", item.rows)
                item.added = self.db.total_changes - before
            self.db.execute("commit")
        except BaseException as exc:
            self.db.execute("rollback")
            for item in batch:
                item.error, item.added = exc, 0
        finally:
            for item in batch:
                item.done = True

    def pending(self, limit: int = 10_000, connection_ids: Iterable[str] | None = None,
                after: int = 0) -> list[JournaledEvent]:
        """Pending events with seq > `after`, oldest first."""
        sql = ("select seq, connection_id, provider, event_id, received_at, occurred_ms, body from events "
               "where state = 'pending' and seq > ?")
        params: list = [after]
        if connection_ids is not None:
            ids = list(connection_ids)
            sql += f" and connection_id in ({','.join('?' * len(ids))})"
            params += ids
        with self.lock:
            rows = self.db.execute(sql + " order by seq limit ?", [*params, limit]).fetchall()
        return [JournaledEvent(*row) for row in rows]

    def mark(self, seqs: Iterable[int], state: str, reason: str | None = None) -> None:
        now = time.time()
        with self.lock:
            self.db.execute("begin immediate")
            self.db.executemany("update events set state = ?, reason = ?, drained_at = ? where seq = ?",
                                [(state, reason, now, seq) for seq in seqs])
            self.db.execute("commit")

    def prune(self, keep_days: float = RETENTION_DAYS) -> int:
        """Forget applied events older than `keep_days` (longer than any provider retries: HubSpot's
        retries are reported to span up to 3 days) — their ids dedupe retries until then."""
        with self.lock:
            cursor = self.db.execute("delete from events where state = 'applied' and received_at < ?",
                                     [time.time() - keep_days * 86400])
        return cursor.rowcount

    def replay_dead(self, connection_id: str | None = None) -> int:
        """Put dead-lettered events back to pending (after a fix); returns how many."""
        with self.lock:
            cursor = self.db.execute("update events set state = 'pending', reason = null, drained_at = null "
                                     "where state = 'dead'" + (" and connection_id = ?" if connection_id else ""),
                                     [connection_id] if connection_id else [])
        return cursor.rowcount

    def summary(self) -> list[dict]:
        """Per connection: events by state, oldest pending event's receipt time, dead-letter reasons."""
        with self.lock:
            rows = self.db.execute(
                "select connection_id, state, count(*), min(received_at), max(drained_at - received_at), "
                "group_concat(distinct reason) from events group by connection_id, state").fetchall()
        out: dict[str, dict] = {}
        for connection_id, state, count, oldest, lag, reasons in rows:
            entry = out.setdefault(connection_id, {"connection_id": connection_id, "pending": 0, "applied": 0,
                                                   "dead": 0, "oldest_pending_at": None, "max_drain_lag_s": None,
                                                   "dead_reasons": []})
            entry[state] = count
            if state == "pending":
                entry["oldest_pending_at"] = oldest
            if state == "applied":
                entry["max_drain_lag_s"] = lag
            if state == "dead" and reasons:
                entry["dead_reasons"] = sorted(reasons.split(","))
        return sorted(out.values(), key=lambda e: e["connection_id"])


def webhook_status() -> list[dict] | None:
    """`Journal.summary()` with the oldest pending event's age in seconds; None without a journal."""
    if not journal_path().exists():
        return None
    journal = Journal()
    try:
        summary = journal.summary()
    finally:
        journal.close()
    now = time.time()
    for entry in summary:
        oldest = entry.pop("oldest_pending_at")
        entry["oldest_pending_age_s"] = None if oldest is None else round(now - oldest, 1)
    return summary


def pending_mark() -> tuple[int, int] | None:
    """(pending events, highest pending seq) without creating anything; None when no journal exists
    (nothing was ever received). What the Dagster drain sensor polls: one indexed count."""
    path = data_dir() / "webhooks" / "intake.sqlite"
    if not path.exists():
        return None
    db = sqlite3.connect(path, timeout=30)
    try:
        count, last = db.execute("select count(*), max(seq) from events where state = 'pending'").fetchone()
    except sqlite3.OperationalError:   # created but its schema not yet committed: nothing pending
        return 0, 0
    finally:
        db.close()
    return count, last or 0
