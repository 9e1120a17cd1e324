"""Workable SPI v3 source: candidates, jobs, members, events, stages and departments into `raw_workable`.

Candidates: the whole list on the first run, then `updated_after` from the stored cursor (minus the
connection's look-back and one second, because the filter is exclusive), with boundary de-duplication;
Workable sorts by id, not by time, so the cursor moves to the newest `updated_at` the pass saw (never past
now minus the settle margin). Disqualified candidates stay listed (the canonical application becomes
REJECTED). The other lists are small and have no modification filter: read whole every run; a record that
no longer appears gets a tombstone row (ids of the previous pass in resource state). Every list is read at
the maximum `limit=100` and followed through its `paging.next` URLs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from canonry.raw import RAW_COLUMNS_HINT, BoundaryDedup
from canonry.runtime import ConnectionRuntime, until_stopped

from .helpers import api_root, list_pages, page_table, session_for, vanished_table
from .settings import EXCLUSIVE_FILTER_MARGIN_SECONDS, LISTINGS, SETTLE_SECONDS, Listing


@dlt.source(name="workable", max_table_nesting=0)
def source(runtime: ConnectionRuntime):
    """One append-only resource per object the connection syncs."""
    api_root(runtime)   # a connection without its account host fails before any resource starts
    for name, listing in LISTINGS.items():
        if runtime.wants(name):
            items = _incremental(runtime, listing) if listing.incremental else _whole(runtime, listing)
            # A 429 storm past the retries ends the run cleanly: cursors move only when a pass ends.
            yield dlt.resource(until_stopped(runtime, items), name=name, write_disposition="append",
                               columns=RAW_COLUMNS_HINT)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _incremental(runtime: ConnectionRuntime, listing: Listing) -> Iterator[pa.Table]:
    state = dlt.current.resource_state()
    session = session_for(runtime)
    root = api_root(runtime)
    started = datetime.now(UTC)
    settle_point = started - timedelta(seconds=SETTLE_SECONDS)
    cursor = state.get("cursor")
    if cursor is None or runtime.options.get("full_refresh"):
        lower, params = None, {}
        dedup = BoundaryDedup(state, track_from=settle_point - runtime.lookback)
    else:
        lower = datetime.fromisoformat(cursor) - runtime.lookback
        params = {"updated_after": _iso(lower - timedelta(seconds=EXCLUSIVE_FILTER_MARGIN_SECONDS))}
        dedup = BoundaryDedup(state, track_from=lower)
    newest = lower
    for records in list_pages(session, root, listing, params):
        if not records:
            continue
        table = page_table(records, listing, runtime.connection_id, started)
        # Pages come in id order: the page's maximum, not its last row, moves the cursor.
        page_max = pc.max(table["remote_updated_at"]).as_py()
        newest = page_max if newest is None else max(newest, page_max)
        table = dedup.filter(table)
        if table.num_rows:
            yield table
    if lower is None:
        next_cursor = settle_point
    else:
        base = datetime.fromisoformat(cursor)
        next_cursor = max(base, min(newest or base, settle_point))
    dedup.commit(next_cursor - runtime.lookback)
    state["cursor"] = next_cursor.isoformat()


def _whole(runtime: ConnectionRuntime, listing: Listing) -> Iterator[pa.Table]:
    state = dlt.current.resource_state()
    session = session_for(runtime)
    started = datetime.now(UTC)
    seen: list[str] = []
    for records in list_pages(session, api_root(runtime), listing, {}):
        if records:
            table = page_table(records, listing, runtime.connection_id, started)
            seen.extend(table["remote_id"].to_pylist())
            yield table
    current = set(seen)
    vanished = sorted(i for i in state.get("ids", []) if i not in current)
    if vanished:
        yield vanished_table(vanished, runtime.connection_id, started)
    state["ids"] = sorted(current)
