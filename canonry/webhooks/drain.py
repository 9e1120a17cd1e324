"""`canonry webhooks drain`: journal -> raw rows, incremental syncs for id-only events, a lineage build.

Exactly once, across kills: the raw rows of a batch and the ids of the events they came from
(`ops.webhook_applied`) commit in ONE warehouse transaction (DuckDB or PostgreSQL); the journal is marked
afterwards. A drain killed between the two finds the events still pending, sees them applied, and only marks
them. Events that need a fetch stay pending until their connection's sync has succeeded. The warehouse
connection is held only for that transaction (`canonry.warehouse.connect()`: on DuckDB the writer lock
serialises it with syncs; PostgreSQL takes the drain's inserts beside concurrent loads).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import pyarrow as pa

from canonry.config import ConnectionsFile
from canonry.errors import CanonryError
from canonry.raw import raw_page
from canonry.warehouse import connect
from canonry.webhooks.interpret import Change, Uninterpretable, interpret
from canonry.webhooks.journal import Journal, JournaledEvent

APPLIED_DDL = """create table if not exists ops.webhook_applied (
    connection_id varchar not null, event_id varchar not null, applied_at timestamptz not null,
    primary key (connection_id, event_id))"""


@dataclass
class DrainResult:
    events: int = 0
    applied: int = 0
    dead: int = 0
    rows: dict[str, int] = field(default_factory=dict)        # raw_<provider>.<object> -> rows written
    synced: dict[str, str] = field(default_factory=dict)      # connection id -> sync status
    waiting: int = 0                                          # events left pending (their sync failed)
    paused: dict[str, int] = field(default_factory=dict)      # connection id -> events held by canonry pause
    built: bool | None = None                                 # dbt build of the affected lineage
    errors: list[str] = field(default_factory=list)


@dataclass
class _Planned:
    event: JournaledEvent
    changes: list[Change]


def _received(event: JournaledEvent) -> datetime:
    return datetime.fromtimestamp(event.received_at, UTC)


def _table_exists(conn, schema: str, table: str) -> bool:
    return bool(conn.execute("select count(*) from information_schema.tables where table_schema = ? and "
                             "table_name = ?", [schema, table]).fetchone()[0])


def _latest(conn, relation: str, connection_id: str, remote_ids: list[str]) -> dict[str, tuple]:
    """remote_id -> (payload, remote_updated_at, is_deleted) of the latest raw version (latest_raw's order).
    (A subquery rather than `qualify`: the same SQL runs on DuckDB and PostgreSQL.)"""
    rows = conn.execute(
        f"select remote_id, payload, remote_updated_at, is_deleted from (select remote_id, payload, "
        f"remote_updated_at, is_deleted, row_number() over (partition by remote_id order by remote_updated_at "
        f"desc nulls last, is_deleted desc, _dlt_load_id desc) as version from {relation} "
        "where connection_id = ? and remote_id in (select unnest(?))) as versions where version = 1",
        [connection_id, remote_ids]).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _insert(conn, relation: str, table: pa.Table) -> None:
    """Append an arrow table to a raw table: DuckDB reads the arrow table in place; PostgreSQL gets the rows
    as parameters (a drain batch is small: the bulk of raw arrives through dlt's loads)."""
    columns = ", ".join(table.column_names)
    if getattr(conn, "dialect", "duckdb") == "postgres":
        placeholders = ", ".join("?" * table.num_columns)
        rows = [tuple(row.values()) for row in table.to_pylist()]
        conn.executemany(f"insert into {relation} ({columns}) values ({placeholders})", rows)
        return
    conn.register("webhook_rows", table)
    conn.execute(f"insert into {relation} ({columns}) select * from webhook_rows")
    conn.unregister("webhook_rows")


def _rows_for(conn, provider: str, object_name: str, connection_id: str, changes: list[Change],
              load_id: str, extracted_at: datetime) -> pa.Table | None:
    """The raw rows for one object's changes; None when its raw table does not exist yet (never synced)."""
    schema = f"raw_{provider}"
    if not _table_exists(conn, schema, object_name):
        return None
    relation = f'{schema}."{object_name}"'
    latest = _latest(conn, relation, connection_id, [c.remote_id for c in changes])
    records, ids, stamps, deleted = [], [], [], []
    for change in changes:
        known = latest.get(change.remote_id)
        if change.is_deleted:
            if known is None and change.payload is None:
                continue          # deleted before we ever saw it: nothing to flag
            if known is not None and known[2]:
                continue          # already deleted in raw
            payload = change.payload or orjson.loads(known[0])
            # A delete is the record's last word: never older than the version it removes.
            stamp = max(filter(None, [change.occurred_at, known[1] if known else None]))
        else:
            payload, stamp = change.payload, change.occurred_at
        records.append(payload)
        ids.append(change.remote_id)
        stamps.append(stamp)
        deleted.append(change.is_deleted)
    if not records:
        return pa.table({})
    table = raw_page(records, connection_id=connection_id, remote_ids=ids, updated_at=stamps, is_deleted=deleted,
                     extracted_at=extracted_at)
    return table.append_column("_dlt_load_id", pa.repeat(pa.scalar(load_id, pa.string()), table.num_rows))


def _write(plans: list[_Planned], providers: dict[str, str], result: DrainResult) -> dict[int, list[Change]]:
    """One transaction: raw rows + applied ids. Returns, per event seq, the fetches it still needs."""
    fetches: dict[int, list[Change]] = {}
    load_id = f"{time.time():.6f}"   # dlt's load id format: later loads sort after, per connection
    extracted_at = datetime.now(UTC)
    conn = connect()
    try:
        conn.execute("create schema if not exists ops")
        conn.execute(APPLIED_DDL)
        conn.execute("begin transaction")
        keys = [(p.event.connection_id, p.event.event_id) for p in plans]
        event_ids = sorted({event_id for _, event_id in keys})
        applied = {tuple(r) for r in conn.execute(
            "select connection_id, event_id from ops.webhook_applied where event_id in (select unnest(?))",
            [event_ids]).fetchall()} & set(keys) if keys else set()
        grouped: dict[tuple[str, str], list[Change]] = defaultdict(list)
        for plan in plans:
            done = (plan.event.connection_id, plan.event.event_id) in applied
            fetches[plan.event.seq] = [c for c in plan.changes if c.fetch]
            if not done:
                for change in plan.changes:
                    if not change.fetch:
                        grouped[(plan.event.connection_id, change.object)].append(change)
        for (connection_id, object_name), changes in grouped.items():
            provider = providers[connection_id]
            table = _rows_for(conn, provider, object_name, connection_id, changes, load_id, extracted_at)
            if table is None:
                # Never synced: the first sync reads everything, this change included.
                for plan in plans:
                    if plan.event.connection_id == connection_id:
                        fetches[plan.event.seq].append(Change(object_name, None, None))
                continue
            if table.num_rows:
                _insert(conn, f'raw_{provider}."{object_name}"', table)
                name = f"raw_{provider}.{object_name}"
                result.rows[name] = result.rows.get(name, 0) + table.num_rows
        fresh = [k for k in keys if k not in applied]
        if fresh:
            conn.executemany("insert into ops.webhook_applied values (?, ?, ?)",
                             [[c, e, extracted_at] for c, e in fresh])
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    finally:
        conn.close()
    return fetches


def _apply_batch(events: list[JournaledEvent], connections: dict, journal: Journal, result: DrainResult,
                 waiting: dict[str, list[int]], touched: set[str], paused: dict | None = None) -> None:
    """Interpret, write and mark one batch; events needing a sync are added to `waiting` (by connection);
    events of a paused connection, or touching a paused object of it (`paused`: connection id -> its
    canonry pause), stay pending, counted in `result.paused`: a later drain applies them after the resume.
    An event is held whole (never split): its changes commit together or not at all."""
    plans, dead = [], []
    paused = paused or {}

    def hold(event: JournaledEvent) -> None:
        result.paused[event.connection_id] = result.paused.get(event.connection_id, 0) + 1

    for event in events:
        pause = paused.get(event.connection_id)
        if pause is not None and pause.objects is None:
            hold(event)
            continue
        if event.connection_id not in connections:
            dead.append((event.seq, "connection not in the connections file"))
            continue
        try:
            changes = interpret(event.provider, event.body, _received(event))
        except Uninterpretable as exc:
            dead.append((event.seq, str(exc)))
            continue
        if pause is not None and {c.object for c in changes} & set(pause.objects):
            hold(event)
            continue
        plans.append(_Planned(event, changes))
    for seq, reason in dead:
        journal.mark([seq], "dead", reason)
    result.dead += len(dead)
    if not plans:
        return
    fetches = _write(plans, {c: connections[c].provider for c in connections}, result)
    done_now = [p.event.seq for p in plans if not fetches[p.event.seq]]
    journal.mark(done_now, "applied")
    result.applied += len(done_now)
    for plan in plans:
        if fetches[plan.event.seq]:
            waiting.setdefault(plan.event.connection_id, []).append(plan.event.seq)
        elif any(not c.fetch for c in plan.changes):
            touched.add(connections[plan.event.connection_id].provider)


def drain(model: ConnectionsFile, *, journal: Journal | None = None, run_syncs: bool = True,
          run_build: bool = True, batch_size: int = 10_000,
          sync: Callable | None = None, build_for: Callable | None = None) -> DrainResult:
    """Apply every pending event, in journal order and in batches of `batch_size`; then one incremental
    sync per connection with id-only events, then one build; see the module docstring."""
    own_journal = journal is None
    journal = journal or Journal()
    result = DrainResult()
    connections = {c.id: c for c in model.connections}
    waiting: dict[str, list[int]] = {}
    touched: set[str] = set()
    from canonry.rollout.pause import pauses, record_skip, unpaused

    held = {cid: p for cid, p in pauses().items() if cid in connections}
    try:
        after = 0
        while True:
            events = journal.pending(batch_size, after=after)
            result.events += len(events)
            if events:
                _apply_batch(events, connections, journal, result, waiting, touched, held)
                after = events[-1].seq
            if len(events) < batch_size:
                break
        if waiting and run_syncs:
            if sync is None:
                from canonry.pipeline import sync
            for connection_id, seqs in sorted(waiting.items()):  # debounced: one sync per connection
                # a connection with paused objects syncs without them (its events for them were held)
                allowed = unpaused(connections[connection_id], held.get(connection_id))
                if allowed is None:  # every object paused: its events stay pending
                    continue
                outcome = sync(allowed)
                result.synced[connection_id] = outcome.status
                if outcome.status != "success":
                    result.errors.append(f"{connection_id}: sync {outcome.status}: {outcome.error}")
                    continue
                journal.mark(seqs, "applied")
                result.applied += len(seqs)
                touched.add(connections[connection_id].provider)
        result.waiting = result.events - result.applied - result.dead
        for connection_id in result.paused:
            record_skip(held[connection_id], "canonry webhooks drain")
        journal.prune()
        if touched and run_build:
            if build_for is None:
                from canonry.transform import build_for
            built = build_for(sorted(touched))
            result.built = built.success
            if not built.success:
                result.errors.append(f"dbt build failed: {built.error or [n.name for n in built.failures()]}")
        return result
    except CanonryError as exc:
        result.errors.append(str(exc))
        return result
    finally:
        if own_journal:
            journal.close()
