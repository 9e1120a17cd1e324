"""HubSpot CRM source: contacts, companies, deals, owners and deal pipelines into `raw_hubspot`.

Full sync reads the list endpoints (100 per page, associations inline); incremental sync reads the
search endpoint from the stored cursor (200 per page, inclusive lower bound, boundary de-duplication,
the 10,000-result cap worked around). Deletes come from `archived=true` listings.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dlt
import pyarrow as pa

from canonry.http import budget_for
from canonry.raw import RAW_COLUMNS_HINT, BoundaryDedup
from canonry.runtime import RESUME_KEY, ConnectionRuntime

from .helpers import list_pages, list_pages_from, merge_associations, page_table, search_pages_from
from .settings import (
    CRM_OBJECTS,
    LIST_PAGE_SIZE,
    OBJECTS,
    OBJECTS_PATH,
    OWNERS_PATH,
    PIPELINES_PATH,
    SEARCH_PATH,
    SEARCH_RATE_LIMIT,
    SETTLE_SECONDS,
    CrmObject,
)


@dlt.source(name="hubspot", max_table_nesting=0)
def source(runtime: ConnectionRuntime):
    """One resource per object the connection syncs."""
    for name in OBJECTS:
        if not runtime.wants(name):
            continue
        if name in CRM_OBJECTS:
            yield dlt.resource(_crm_object(runtime, CRM_OBJECTS[name]), name=name, write_disposition="append",
                               columns=RAW_COLUMNS_HINT)
        elif name == "owners":
            yield dlt.resource(_owners(runtime), name="owners", write_disposition="append", columns=RAW_COLUMNS_HINT)
        elif name == "pipelines":
            yield dlt.resource(_pipelines(runtime), name="pipelines", write_disposition="append",
                               columns=RAW_COLUMNS_HINT)


def _crm_object(runtime: ConnectionRuntime, spec: CrmObject) -> Iterator[pa.Table]:
    """Resumable (settings.RESUMABLE): before each page is yielded, `state["resume"]` already says where
    the next one starts, so the pipeline may stop this generator after any page (a checkpoint) and a
    later run continues from there; the cursor moves only when every phase is done."""
    state = dlt.current.resource_state()
    session = runtime.session()
    resume = state.get(RESUME_KEY)
    if resume is None:
        started = datetime.now(UTC)
        settle_point = started - timedelta(seconds=SETTLE_SECONDS)
        cursor = state.get("cursor")
        if cursor is None or runtime.options.get("full_refresh"):
            # Full sync: the list endpoint at its maximum page size, associations inline.
            resume = {"phase": "list", "started": started.isoformat(), "after": None,
                      "track_from": (settle_point - runtime.lookback).isoformat(),
                      "next_cursor": settle_point.isoformat()}
        else:
            lower = datetime.fromisoformat(cursor) - runtime.lookback
            resume = {"phase": "search", "started": started.isoformat(), "position": [lower.isoformat(), 0],
                      "track_from": lower.isoformat(), "lower": lower.isoformat(), "newest": lower.isoformat()}
        resume["emitted"] = {}
    started = datetime.fromisoformat(resume["started"])
    settle_point = started - timedelta(seconds=SETTLE_SECONDS)
    dedup = BoundaryDedup(state, track_from=datetime.fromisoformat(resume["track_from"]))
    dedup.emitted = dict(resume["emitted"])
    url_list = runtime.base_url + OBJECTS_PATH.format(object=spec.name)
    properties = list(spec.properties)

    if resume["phase"] == "list":
        params = {"limit": LIST_PAGE_SIZE, "properties": ",".join(properties), "archived": "false"}
        if spec.associations:
            params["associations"] = ",".join(spec.associations)
        for results, after in list_pages_from(session, url_list, params, resume["after"]):
            table = dedup.filter(page_table(results, runtime.connection_id, started))
            resume = {**resume, "after": after, "emitted": dict(dedup.emitted)}
            if after is None:
                resume = _to_archived(resume, resume["next_cursor"])
            state[RESUME_KEY] = resume
            yield table
    elif resume["phase"] == "search":
        lower = datetime.fromisoformat(resume["lower"])
        newest = datetime.fromisoformat(resume["newest"])
        # Search has its own limit (5/s per account), separate from the ten-second burst budget.
        search_session = runtime.session(budget=budget_for("hubspot-search", runtime.connection_id,
                                                           SEARCH_RATE_LIMIT))
        for results, position in search_pages_from(search_session,
                                                   runtime.base_url + SEARCH_PATH.format(object=spec.name),
                                                   spec.cursor_property, tuple(resume["position"]), properties):
            merge_associations(session, runtime.base_url, spec.name, results, spec.associations)
            table = page_table(results, runtime.connection_id, started)
            if table.num_rows:
                newest = max(newest, table["remote_updated_at"][-1].as_py())
            table = dedup.filter(table)
            resume = {**resume, "position": list(position) if position else None, "newest": newest.isoformat(),
                      "emitted": dict(dedup.emitted)}
            if position is None:
                next_cursor = min(newest, settle_point) if newest > lower else lower + runtime.lookback
                resume = _to_archived(resume, next_cursor.isoformat())
            state[RESUME_KEY] = resume
            yield table

    if resume["phase"] == "archived":
        yield from _archived(runtime, session, url_list, state, started, resume, spec)
        resume = state[RESUME_KEY]
    # Every phase done: the cursor moves and the checkpoint is cleared.
    next_cursor = datetime.fromisoformat(resume["next_cursor"])
    dedup.emitted = dict(resume["emitted"])
    dedup.commit(next_cursor - runtime.lookback)
    state["cursor"] = next_cursor.isoformat()
    state.pop(RESUME_KEY, None)


def _to_archived(resume: dict, next_cursor: str) -> dict:
    return {**resume, "phase": "archived", "next_cursor": next_cursor, "after": None, "archived_emitted": {},
            "archive_newest": None}


def _archived(runtime: ConnectionRuntime, session, url: str, state: dict, started: datetime,
              resume: dict, spec: CrmObject) -> Iterator[pa.Table]:
    """Archived (soft-deleted) records, with every property (so the deleted row keeps its last values);
    those already recorded are dropped by their archive time."""
    archive_cursor = state.get("archive_cursor")
    since = datetime.fromisoformat(archive_cursor) if archive_cursor else datetime(1970, 1, 1, tzinfo=UTC)
    dedup = BoundaryDedup(state, track_from=since, key="archived_seen")
    dedup.emitted = dict(resume["archived_emitted"])
    newest = datetime.fromisoformat(resume["archive_newest"]) if resume["archive_newest"] else since
    params = {"limit": LIST_PAGE_SIZE, "archived": "true", "properties": ",".join(spec.properties)}
    if spec.associations:
        params["associations"] = ",".join(spec.associations)
    for results, after in list_pages_from(session, url, params, resume["after"]):
        table = page_table(results, runtime.connection_id, started, archived=True)
        table = table.filter(pa.compute.greater_equal(table["remote_updated_at"], pa.scalar(since, table.schema.field(
            "remote_updated_at").type)))
        if table.num_rows:
            newest = max(newest, pa.compute.max(table["remote_updated_at"]).as_py())
            table = dedup.filter(table)
        resume = {**resume, "after": after, "archived_emitted": dict(dedup.emitted),
                  "archive_newest": newest.isoformat(), "phase": "archived" if after else "done"}
        if after is None:
            dedup.commit(newest)
            state["archive_cursor"] = newest.isoformat()
        state[RESUME_KEY] = resume
        if table.num_rows:
            yield table


def _owners(runtime: ConnectionRuntime) -> Iterator[pa.Table]:
    session = runtime.session()
    started = datetime.now(UTC)
    url = runtime.base_url + OWNERS_PATH
    for archived in (False, True):
        for results in list_pages(session, url, {"limit": 500, "archived": str(archived).lower()}):
            if results:
                yield page_table(results, runtime.connection_id, started, archived=archived)


def _pipelines(runtime: ConnectionRuntime) -> Iterator[pa.Table]:
    session = runtime.session()
    started = datetime.now(UTC)
    body = session.get_json(runtime.base_url + PIPELINES_PATH)
    results = body.get("results", [])
    if results:
        yield page_table(results, runtime.connection_id, started)
