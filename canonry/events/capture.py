"""Change capture: after each build, which canonical records were created, updated or deleted since the last
capture, as events in `ops.change_events`, each fanned out to its subscribers in `ops.deliveries`.

What changed is derived from the canonical tables themselves, so it is the same whatever built them (a full
refresh, an incremental mart, a replay, a webhook drain): `ops.event_state` keeps, per table and canonical
id, a hash of the record's contract columns (without `last_synced_at` and `_load_id`, which change when a
record is re-read unchanged) and whether it was deleted. A capture compares the tables with that state in
SQL (one full outer join per table) and rewrites the state:

| now \\ before       | absent          | present, live        | present, deleted |
|--------------------|-----------------|----------------------|------------------|
| live               | `created`       | `updated` (hash differs) | `updated` (restored) |
| deleted            | — (never seen)  | `deleted`            | —                |
| gone (row removed) | —               | `deleted`            | —                |

Nothing is captured while no subscriber exists (no cost to a warehouse nobody subscribes to). The first
capture is a baseline: it records the state and emits nothing (the records that exist are read through the
API, not replayed as events). Only events some subscriber wants are stored.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from canonry.api.resources import RESOURCES, Resource
from canonry.api.store import _record
from canonry.canonical import column_kind
from canonry.events.subscribers import Subscriber, load_subscribers

UNHASHED = ("last_synced_at", "_load_id")   # change on every re-read of an unchanged record
CHUNK = 500


@dataclass
class CaptureResult:
    baseline: bool = False
    events: dict[str, int] = field(default_factory=dict)   # event type -> count
    deliveries: int = 0
    skipped: str | None = None                              # why nothing was captured

    @property
    def total(self) -> int:
        return sum(self.events.values())


def event_type(resource: Resource, action: str) -> str:
    """`crm_contacts` + `updated` -> `crm.contact.updated` (the entity is the id column's stem)."""
    return f"{resource.family}.{resource.id_column.removesuffix('_id')}.{action}"


def _row_hash(resource: Resource) -> str:
    parts = [f"coalesce(cast({c} as varchar), '\u2400')" for c in resource.columns if c not in UNHASHED]
    return f"md5(concat_ws('|', {', '.join(parts)}))"


def _existing_tables(conn) -> set[str]:
    return {r[0] for r in conn.execute(
        "select table_name from information_schema.tables where table_schema = 'canonical'").fetchall()}


def _diff(conn, resource: Resource) -> list[tuple[str, str, str]]:
    """(action, record id, tenant) of every record that changed since the state was written."""
    rows = conn.execute(f"""
        with cur as (select {resource.id_column} as record_id, tenant_id, is_deleted, {_row_hash(resource)} as h
                     from canonical.{resource.table}),
             prev as (select record_id, tenant_id, is_deleted, row_hash as h from ops.event_state
                      where table_name = ?)
        select coalesce(cur.record_id, prev.record_id), coalesce(cur.tenant_id, prev.tenant_id),
               cur.record_id is not null, cur.is_deleted, prev.record_id is not null, prev.is_deleted,
               cur.h = prev.h
        from cur full outer join prev on cur.record_id = prev.record_id
        where prev.record_id is null or cur.record_id is null or cur.h <> prev.h
              or cur.is_deleted <> prev.is_deleted""", [resource.table]).fetchall()
    changes = []
    for record_id, tenant, now, now_deleted, before, before_deleted, _same in rows:
        if now and not now_deleted:
            changes.append(("created" if not before else "updated", record_id, tenant))
        elif before and not before_deleted:
            changes.append(("deleted", record_id, tenant))
    return changes


def _write_state(conn, resource: Resource) -> None:
    conn.execute("delete from ops.event_state where table_name = ?", [resource.table])
    conn.execute(f"insert into ops.event_state select ?, {resource.id_column}, tenant_id, is_deleted, "
                 f"{_row_hash(resource)} from canonical.{resource.table}", [resource.table])


def _records(conn, resource: Resource, ids: list[str]) -> dict[str, dict]:
    """The current rows of these ids, as the read API renders them."""
    kinds = {c: column_kind(resource.table, c) for c in resource.columns}
    out = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        cursor = conn.execute(f"select {', '.join(resource.columns)} from canonical.{resource.table} "
                              f"where {resource.id_column} in ({', '.join('?' for _ in chunk)})", chunk)
        names = list(resource.columns)
        for row in cursor.fetchall():
            record = _record(names, row, kinds)
            out[record[resource.id_column]] = record
    return out


def _event_rows(resource: Resource, changes: list, records: dict, subscribers: list[Subscriber], seq: int,
                now: datetime) -> tuple[list[dict], list[dict]]:
    events, deliveries = [], []
    for action, record_id, tenant in changes:
        kind = event_type(resource, action)
        wanted = [s for s in subscribers if s.tenant == tenant and s.wants(kind)]
        if not wanted:
            continue
        seq += 1
        event_id = "evt_" + uuid.uuid4().hex
        body = {"type": kind, "timestamp": now.isoformat(), "data": {
            "id": record_id, "resource": resource.path.removeprefix("/v1/"), "tenant_id": tenant,
            "sequence": seq, "record": records.get(record_id, {resource.id_column: record_id})}}
        events.append({"event_id": event_id, "seq": seq, "event_type": kind, "tenant_id": tenant,
                       "table_name": resource.table, "record_id": record_id, "occurred_at": now,
                       "payload": json.dumps(body, separators=(",", ":"), sort_keys=True)})
        deliveries += [{"subscriber_id": s.subscriber_id, "event_id": event_id, "seq": seq,
                        "record_key": f"{resource.table}:{record_id}", "status": "pending", "attempts": 0,
                        "next_attempt_at": now, "last_status": None, "last_error": None, "updated_at": now,
                        "delivered_at": None} for s in wanted]
    return events, deliveries


def capture(conn=None) -> CaptureResult:
    """Capture the changes of every built canonical table (see the module's table); returns what it stored."""
    from canonry import ops
    from canonry.warehouse import connect

    subscribers = list(load_subscribers().values())
    if not subscribers:
        return CaptureResult(skipped="no subscribers")
    own = conn is None
    conn = conn or connect(purpose="change capture")
    try:
        ops.ensure_tables(conn)
        result = CaptureResult()
        result.baseline = conn.execute("select count(*) from ops.event_captures").fetchall()[0][0] == 0
        seq = conn.execute("select coalesce(max(seq), 0) from ops.change_events").fetchall()[0][0]
        now = datetime.now(UTC)
        built = _existing_tables(conn)
        conn.execute("begin transaction")
        for resource in (r for r in RESOURCES if r.table in built):
            if not result.baseline:
                changes = _diff(conn, resource)
                records = _records(conn, resource, [rid for action, rid, _ in changes if action != "deleted"]
                                   + [rid for action, rid, _ in changes if action == "deleted"])
                events, deliveries = _event_rows(resource, changes, records, subscribers, seq, now)
                seq += len(events)
                ops.append("change_events", events, conn=conn)
                ops.append("deliveries", deliveries, conn=conn)
                for event in events:
                    result.events[event["event_type"]] = result.events.get(event["event_type"], 0) + 1
                result.deliveries += len(deliveries)
            _write_state(conn, resource)
        ops.append("event_captures", [{"captured_at": now, "baseline": result.baseline, "events": result.total,
                                       "deliveries": result.deliveries}], conn=conn)
        conn.execute("commit")
        return result
    except BaseException:
        try:
            conn.execute("rollback")
        except Exception:  # noqa: BLE001, S110 - no transaction open: nothing to undo
            pass
        raise
    finally:
        if own:
            conn.close()
