"""Lever Data API v1 source: opportunities (+ deletes), their interviews and offers, postings, users,
stages and archive reasons into `raw_lever`.

Opportunities and postings: full list on the first run, then `updated_at_start` (epoch ms, inclusive)
from the stored cursor minus the connection's look-back, with boundary de-duplication. Deletes come from
`/opportunities/deleted` (`deleted_at_start`). Interviews and offers have no org-wide list: the
opportunities pass reads them per opportunity, with each page, for every opportunity the run saw changed
(Lever re-stamps an opportunity's `updatedAt` when its interviews or offers change), so an incremental run costs calls in
proportion to the changes. Users, stages and archive reasons are small and read whole every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dlt
import pyarrow as pa

from canonry.checkpoints import ResumablePass
from canonry.raw import RAW_COLUMNS_HINT, RAW_SCHEMA, BoundaryDedup, raw_page
from canonry.runtime import ConnectionRuntime, until_stopped

from .helpers import (
    children_table,
    deleted_table,
    list_pages,
    list_pages_from,
    page_table,
    session_for,
    to_ms,
    whole_table,
)
from .settings import CHILDREN, INCREMENTAL, OBJECTS, SETTLE_SECONDS, SNAPSHOT_OBJECTS, WHOLE, IncrementalList


@dlt.source(name="lever", max_table_nesting=0)
def source(runtime: ConnectionRuntime):
    """One resource per object the connection syncs (children need their opportunities)."""
    wanted = [name for name in OBJECTS if runtime.wants(name)]
    children = [name for name in CHILDREN if name in wanted]
    if "opportunities" in wanted or children:
        # Interviews and offers are read inside the opportunities pass, page by page (Lever has no org-wide
        # list of them): a checkpoint holds opportunities with their children, and a 429 storm in a child
        # read ends the pass cleanly before that page. Their rows go to their own raw tables.
        # `whole`: a checkpoint is one item per raw table (opportunities, interviews, offers), never cut.
        yield dlt.resource(until_stopped(runtime, _incremental(runtime, INCREMENTAL["opportunities"], children),
                                         whole=True),
                           name="opportunities", write_disposition="append", columns=RAW_COLUMNS_HINT)
    for name in wanted:
        if name in INCREMENTAL and name != "opportunities":
            yield dlt.resource(until_stopped(runtime, _incremental(runtime, INCREMENTAL[name])), name=name,
                               write_disposition="append", columns=RAW_COLUMNS_HINT)
        elif name in WHOLE:
            yield dlt.resource(until_stopped(runtime, _whole(runtime, name)), name=name, write_disposition="append",
                               columns=RAW_COLUMNS_HINT)


def _incremental(runtime: ConnectionRuntime, spec: IncrementalList,
                 children: list[str] | tuple[str, ...] = ()) -> Iterator[pa.Table]:
    """Resumable (SPEC.resumable): the pass is checkpointed at Lever's `next` token (`canonry.checkpoints`);
    the cursor moves and the deleted feed is read when it ends. `children`: the per-opportunity lists read
    with each page (one call per changed opportunity and list), so a page and its children share a checkpoint."""
    state = dlt.current.resource_state()
    session = session_for(runtime)
    url = runtime.base_url + spec.path

    def begin(started: datetime) -> dict:
        cursor = state.get("cursor_ms")
        full = cursor is None or bool(runtime.options.get("full_refresh"))
        lower = None if full else datetime.fromtimestamp(cursor / 1000, tz=UTC) - runtime.lookback
        return {"full": full, "lower": lower.isoformat() if lower else None,
                "newest": lower.isoformat() if lower else None}

    pass_ = ResumablePass(runtime, spec.name, state, begin)
    resume, started = pass_.resume, pass_.started
    settle_point = started - timedelta(seconds=SETTLE_SECONDS)
    params = dict(spec.params)
    lower = datetime.fromisoformat(resume["lower"]) if resume["lower"] else None
    dedup = pass_.dedup(track_from=lower if lower is not None else settle_point - runtime.lookback)
    if lower is not None:
        params["updated_at_start"] = str(to_ms(lower))

    def pages(offset: str | None) -> Iterator[tuple[tuple[pa.Table, pa.Table, dict], str | None]]:
        # Children are read here, inside the page iterator the pass stops cleanly: a page counts as read
        # (its position moves) only once its children are in. Only the versions this run keeps need them.
        for records, following in list_pages_from(session, url, params, offset):
            table = page_table(records, runtime.connection_id, started) if records else RAW_SCHEMA.empty_table()
            kept = dedup.filter(table)
            read = {name: children_table(session, runtime.base_url + CHILDREN[name], kept, started)
                    for name in children} if kept.num_rows else {}
            yield (table, kept, read), following

    for table, kept, read in pass_.pages(pages):
        if not table.num_rows:
            continue
        if lower is not None:
            # Lever does not promise an order: the page's maximum, not its last row, moves the cursor.
            newest = max(datetime.fromisoformat(resume["newest"]), pa.compute.max(table["remote_updated_at"]).as_py())
            resume["newest"] = newest.isoformat()
        pass_.add(kept)
        for name, child in read.items():
            if child is not None:
                pass_.add(child, name)

    if pass_.finished:
        if lower is None:
            next_cursor = settle_point
        else:
            base = lower + runtime.lookback
            next_cursor = max(base, min(datetime.fromisoformat(resume["newest"]), settle_point))
        if spec.deleted_path:
            for table in _deleted(runtime, session, runtime.base_url + spec.deleted_path, state, started):
                pass_.add(table)
        dedup.commit(next_cursor - runtime.lookback)
        state["cursor_ms"] = to_ms(next_cursor)
    yield from pass_.commit()


def _deleted(runtime: ConnectionRuntime, session, url: str, state: dict, started: datetime) -> Iterator[pa.Table]:
    """The deleted feed from its own cursor (inclusive), boundary duplicates dropped."""
    cursor = state.get("deleted_cursor_ms")
    since = datetime.fromtimestamp(cursor / 1000, tz=UTC) if cursor is not None else datetime(1970, 1, 1, tzinfo=UTC)
    params = {"deleted_at_start": str(cursor)} if cursor is not None else {}
    dedup = BoundaryDedup(state, track_from=since, key="deleted_seen")
    newest = since
    for stubs in list_pages(session, url, params):
        if not stubs:
            continue
        table = deleted_table(stubs, runtime.connection_id, started)
        newest = max(newest, pa.compute.max(table["remote_updated_at"]).as_py())
        table = dedup.filter(table)
        if table.num_rows:
            yield table
    newest = min(newest, max(since, started - timedelta(seconds=SETTLE_SECONDS)))
    dedup.commit(newest)
    state["deleted_cursor_ms"] = to_ms(newest)


def _whole(runtime: ConnectionRuntime, name: str) -> Iterator[pa.Table]:
    session = session_for(runtime)
    started = datetime.now(UTC)
    path, params = WHOLE[name]
    pages = list_pages(session, runtime.base_url + path, params)
    if name in SNAPSHOT_OBJECTS:
        ordered = [item for page in pages for item in page]
        yield raw_page([ordered], connection_id=runtime.connection_id, remote_ids=["pipeline"],  # type: ignore[list-item]
                       updated_at=[started], extracted_at=started)
        return
    for records in pages:
        if records:
            yield whole_table(records, runtime.connection_id, started)
