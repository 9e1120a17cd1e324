"""Pipedrive source: persons, organizations, deals, activities, notes, leads, users, stages and pipelines
into `raw_pipedrive` (sources/pipedrive/README.md has the endpoint choices and their reasons).

* persons, organizations, deals, activities: API v2 lists sorted by `update_time` ascending, 500 per page;
  incremental with `updated_since` (inclusive, whole seconds) from the stored cursor minus the look-back,
  boundary de-duplication; deals are listed with `status=open,won,lost,deleted`, so deleted deals arrive
  flagged; deleted persons, organizations and activities come from `/v1/recents` (`active_flag: false`).
* notes: `/v1/notes` on a full sync, `/v1/recents?items=note` (changes and deletes) afterwards.
* leads: `/v1/leads` newest first, paging stops at the cursor; deletes (Pipedrive lists none) are found by
  a periodic key scan (`deletes.full_scan_every`).
* users, stages, pipelines: small, read whole every run.
* custom_fields (opt-in: only when the connection's `objects` lists it): the custom field definitions of
  persons, organizations and deals (`/v1/<entity>Fields`), read whole every run, written when new or
  changed; dbt names custom field values with them (sources/pipedrive/README.md, "Custom fields").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dlt
import pyarrow as pa

from canonry.checkpoints import ResumablePass
from canonry.durations import parse_duration
from canonry.errors import CanonryError, ErrorClass
from canonry.raw import RAW_COLUMNS_HINT, TIMESTAMP, BoundaryDedup
from canonry.runtime import ConnectionRuntime, until_stopped

from .helpers import (
    cursor_pages,
    cursor_pages_from,
    custom_field_table,
    floor_second,
    lead_table,
    newest,
    offset_pages,
    rfc3339,
    session_for,
    v1_table,
    v1_timestamp,
    v2_table,
)
from .settings import (
    CURSOR_OBJECTS,
    FIELD_DEFINITION_PATHS,
    LEADS_PATH,
    NOTES_PATH,
    NOTES_RECENTS_ITEM,
    OBJECTS,
    OPT_IN_OBJECTS,
    PAGE_SIZE,
    RECENTS_PATH,
    REFERENCE_PATHS,
    SETTLE_SECONDS,
    USERS_PATH,
    CursorObject,
)


@dlt.source(name="pipedrive", max_table_nesting=0)
def source(runtime: ConnectionRuntime):
    """One resource per object the connection syncs."""
    for name in OBJECTS:
        if not runtime.wants(name) or (name in OPT_IN_OBJECTS and name not in (runtime.objects or ())):
            continue
        if name in CURSOR_OBJECTS:
            rows = _cursor_object(runtime, CURSOR_OBJECTS[name])
        elif name == "notes":
            rows = _notes(runtime)
        elif name == "leads":
            rows = _leads(runtime)
        elif name == "users":
            rows = _users(runtime)
        elif name == "custom_fields":
            rows = _custom_fields(runtime)
        else:
            rows = _reference(runtime, name)
        # A 429 storm past the retries (or the spent daily budget) ends the run cleanly (`until_stopped`):
        # cursors, delete cursors and known lead ids move only when a pass ends.
        yield dlt.resource(until_stopped(runtime, rows), name=name, write_disposition="append",
                           columns=RAW_COLUMNS_HINT)


class _Clock:
    """The times one resource run works with."""

    def __init__(self, runtime: ConnectionRuntime, started: datetime | None = None) -> None:
        self.started = started or datetime.now(UTC)
        settle = runtime.options.get("settle_seconds", SETTLE_SECONDS)
        # Cursors never pass this point; versions at or after it are not remembered for de-duplication
        # (whole-second timestamps: such a record may still change within its second).
        self.settle_point = floor_second(self.started - timedelta(seconds=settle))
        self.lookback = runtime.lookback

    def next_cursor(self, lower: datetime, newest_seen: datetime | None) -> datetime:
        if newest_seen is not None and newest_seen > lower:
            return min(newest_seen, self.settle_point)
        return lower + self.lookback


def _cursor_object(runtime: ConnectionRuntime, spec: CursorObject) -> Iterator[pa.Table]:
    """Resumable (SPEC.resumable): the v2 list is checkpointed at its `next_cursor` (`canonry.checkpoints`);
    the cursor moves and deletes are read from /v1/recents when the pass ends."""
    state = dlt.current.resource_state()
    session = session_for(runtime)

    def begin(started: datetime) -> dict:
        cursor = state.get("cursor")
        full = cursor is None or bool(runtime.options.get("full_refresh"))
        lower = None if full else floor_second(datetime.fromisoformat(cursor) - runtime.lookback)
        return {"full": full, "lower": lower.isoformat() if lower else None, "newest": None}

    pass_ = ResumablePass(runtime, spec.name, state, begin)
    resume = pass_.resume
    clock = _Clock(runtime, pass_.started)
    params: dict = {"limit": PAGE_SIZE, "sort_by": "update_time", "sort_direction": "asc"}
    if spec.statuses:
        params["status"] = spec.statuses
    lower = datetime.fromisoformat(resume["lower"]) if resume["lower"] else None
    if lower is not None:
        params["updated_since"] = rfc3339(lower)
    dedup = pass_.dedup(track_from=lower if lower is not None else clock.settle_point - clock.lookback)
    seen = datetime.fromisoformat(resume["newest"]) if resume["newest"] else None
    for records in pass_.pages(lambda at: cursor_pages_from(session, runtime.base_url + spec.path, params, at)):
        if records:
            table = v2_table(records, runtime.connection_id, clock.started)
            seen = newest(table, seen)
            pass_.add(dedup.filter(table))
    resume["newest"] = seen.isoformat() if seen else None
    if pass_.finished:
        next_cursor = clock.settle_point if lower is None else clock.next_cursor(lower, seen)
        if spec.recents_item:
            if lower is None:
                # Records deleted before the first sync are gone from v2 lists; deletes from now on are read
                # from /v1/recents.
                state["deletes_cursor"] = clock.settle_point.isoformat()
                state.pop("deletes_seen", None)
            else:
                for table in _recents(runtime, session, state, clock, spec.recents_item, "deletes_cursor",
                                      "deletes_seen", only_deleted=True):
                    pass_.add(table)
        dedup.commit(next_cursor - clock.lookback, unsafe_from=clock.settle_point)
        state["cursor"] = next_cursor.isoformat()
    yield from pass_.commit()


def _recents(runtime: ConnectionRuntime, session, state: dict, clock: _Clock, item: str, cursor_key: str,
             seen_key: str, only_deleted: bool) -> Iterator[pa.Table]:
    """`/v1/recents?items=<item>` since the stored cursor: every change (v1 bodies), deletes with
    `active_flag: false`. Whole-second inclusive bound, boundary de-duplication."""
    since = datetime.fromisoformat(state[cursor_key]) if state.get(cursor_key) else clock.settle_point
    lower = floor_second(since - clock.lookback)
    dedup = BoundaryDedup(state, track_from=lower, key=seen_key)
    seen = None
    url = runtime.base_url + RECENTS_PATH
    for rows in offset_pages(session, url, {"since_timestamp": v1_timestamp(lower), "items": item}):
        # `data` is an object, except for users, where Pipedrive answers a one-element list.
        bodies = [body for row in rows if row.get("item") == item
                  for body in (row["data"] if isinstance(row.get("data"), list) else [row.get("data")])
                  if isinstance(body, dict)]
        if not bodies:
            continue
        table = v1_table(bodies, runtime.connection_id, clock.started)
        seen = newest(table, seen)
        if only_deleted:
            table = table.filter(table["is_deleted"])
        if table.num_rows:
            table = dedup.filter(table)
            if table.num_rows:
                yield table
    next_cursor = clock.next_cursor(lower, seen)
    dedup.commit(next_cursor - clock.lookback, unsafe_from=clock.settle_point)
    state[cursor_key] = next_cursor.isoformat()


def _notes(runtime: ConnectionRuntime) -> Iterator[pa.Table]:
    state = dlt.current.resource_state()
    session = session_for(runtime)
    clock = _Clock(runtime)
    if state.get("cursor") is None or runtime.options.get("full_refresh"):
        # Offset pages sorted by id: an edit during the sync does not shift later pages.
        for records in offset_pages(session, runtime.base_url + NOTES_PATH, {"sort": "id ASC"}):
            if records:
                yield v1_table(records, runtime.connection_id, clock.started)
        state["cursor"] = clock.settle_point.isoformat()
        state.pop("seen", None)
        return
    yield from _recents(runtime, session, state, clock, NOTES_RECENTS_ITEM, "cursor", "seen", only_deleted=False)


def _leads(runtime: ConnectionRuntime) -> Iterator[pa.Table]:
    """Leads have no `updated_since` and are not in /recents: newest first, stop at the cursor.
    Deletes are not listed anywhere: a key scan (every `deletes.full_scan_every`) lists every lead and
    flags the ids that vanished; it emits only what changed since the cursor, plus those tombstones."""
    state = dlt.current.resource_state()
    session = session_for(runtime)
    clock = _Clock(runtime)
    url = runtime.base_url + LEADS_PATH
    cursor = state.get("cursor")
    full = cursor is None or runtime.options.get("full_refresh")
    last_scan = state.get("last_key_scan")
    scan_every = parse_duration(runtime.options.get("full_scan_every") or "1d")
    scan = full or last_scan is None or datetime.fromisoformat(last_scan) + scan_every <= clock.started
    lower = None if full else floor_second(datetime.fromisoformat(cursor) - clock.lookback)
    dedup = BoundaryDedup(state, track_from=lower if lower is not None else clock.settle_point - clock.lookback)
    lower_scalar = pa.scalar(lower, TIMESTAMP) if lower is not None else None
    known: set[str] = set(state.get("known_ids", []))
    seen = None
    if scan:
        listed: set[str] = set()
        for records in offset_pages(session, url, {"archived_status": "all", "sort": "add_time ASC"}):
            if not records:
                continue
            listed.update(str(r["id"]) for r in records)
            table = lead_table(records, runtime.connection_id, clock.started)
            if lower_scalar is not None:
                table = table.filter(pa.compute.greater_equal(table["remote_updated_at"], lower_scalar))
            seen = newest(table, seen)
            table = dedup.filter(table)
            if table.num_rows:
                yield table
        gone = sorted(known - listed)
        if gone and not full:
            stamp = clock.started.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            yield lead_table([{"id": lead_id, "update_time": stamp} for lead_id in gone], runtime.connection_id,
                             clock.started, deleted=True)
        known = listed
        state["last_key_scan"] = clock.started.isoformat()
    else:
        for records in offset_pages(session, url, {"archived_status": "all", "sort": "update_time DESC"}):
            if not records:
                break
            table = lead_table(records, runtime.connection_id, clock.started)
            recent = table.filter(pa.compute.greater_equal(table["remote_updated_at"], lower_scalar))
            if recent.num_rows:
                seen = newest(recent, seen)
                known.update(recent["remote_id"].to_pylist())
                fresh = dedup.filter(recent)
                if fresh.num_rows:
                    yield fresh
            if recent.num_rows < table.num_rows or table.num_rows < PAGE_SIZE:
                break  # this page reached records older than the cursor: the rest are older still
    next_cursor = clock.settle_point if lower is None else clock.next_cursor(lower, seen)
    dedup.commit(next_cursor - clock.lookback, unsafe_from=clock.settle_point)
    state["known_ids"] = sorted(known)
    state["cursor"] = next_cursor.isoformat()


def _users(runtime: ConnectionRuntime) -> Iterator[pa.Table]:
    """Every user in one answer; deactivated users keep `active_flag: false` (users are never deleted)."""
    session = session_for(runtime)
    clock = _Clock(runtime)
    body = session.get_json(runtime.base_url + USERS_PATH)
    records = body.get("data") if isinstance(body, dict) and body.get("success") else None
    if records is None:
        raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "users answer without success:true and a data array",
                           provider="pipedrive", connection_id=runtime.connection_id, endpoint=USERS_PATH)
    if records:
        yield v1_table(records, runtime.connection_id, clock.started, stamp_key="modified", deleted=False)


def _reference(runtime: ConnectionRuntime, name: str) -> Iterator[pa.Table]:
    session = session_for(runtime)
    clock = _Clock(runtime)
    for records in cursor_pages(session, runtime.base_url + REFERENCE_PATHS[name], {"limit": PAGE_SIZE}):
        if records:
            yield v2_table(records, runtime.connection_id, clock.started)


def _custom_fields(runtime: ConnectionRuntime) -> Iterator[pa.Table]:
    """Custom field definitions (a 40-character hash `key`; system fields are skipped), read whole every run:
    a definition is written when it is new or its name, type or options changed (fingerprints in state)."""
    state = dlt.current.resource_state()
    known: dict[str, str] = state.setdefault("fingerprints", {})
    session = session_for(runtime)
    clock = _Clock(runtime)
    for entity, path in FIELD_DEFINITION_PATHS.items():
        for records in offset_pages(session, runtime.base_url + path, {}):
            table, fingerprints = custom_field_table(records, entity, known, runtime.connection_id, clock.started)
            known.update(fingerprints)
            if table is not None:
                yield table
