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
from canonry.prefetch import prefetch
from canonry.raw import RAW_COLUMNS_HINT, BoundaryDedup, coalesce_pages
from canonry.runtime import ConnectionRuntime

from .helpers import list_pages, merge_associations, page_table, search_pages
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
            # Pages are coalesced into larger arrow tables before dlt (canonry/raw.py, coalesce_pages).
            yield dlt.resource(coalesce_pages(_crm_object(runtime, CRM_OBJECTS[name])), name=name,
                               write_disposition="append", columns=RAW_COLUMNS_HINT)
        elif name == "owners":
            yield dlt.resource(_owners(runtime), name="owners", write_disposition="append", columns=RAW_COLUMNS_HINT)
        elif name == "pipelines":
            yield dlt.resource(_pipelines(runtime), name="pipelines", write_disposition="append",
                               columns=RAW_COLUMNS_HINT)


def _crm_object(runtime: ConnectionRuntime, spec: CrmObject) -> Iterator[pa.Table]:
    state = dlt.current.resource_state()
    session = runtime.session()
    started = datetime.now(UTC)
    settle_point = started - timedelta(seconds=SETTLE_SECONDS)
    cursor = state.get("cursor")
    url_list = runtime.base_url + OBJECTS_PATH.format(object=spec.name)
    properties = list(spec.properties)

    if cursor is None or runtime.options.get("full_refresh"):
        # Full sync: the list endpoint at its maximum page size, associations inline.
        dedup = BoundaryDedup(state, track_from=settle_point - runtime.lookback)
        params = {"limit": LIST_PAGE_SIZE, "properties": ",".join(properties), "archived": "false"}
        if spec.associations:
            params["associations"] = ",".join(spec.associations)
        # The next list page is read while this one is built (canonry/prefetch.py); the session is
        # used again (archived listing) only after the prefetch thread has finished.
        for results in prefetch(list_pages(session, url_list, params)):
            yield dedup.filter(page_table(results, runtime.connection_id, started))
        next_cursor = settle_point
    else:
        lower = datetime.fromisoformat(cursor) - runtime.lookback
        dedup = BoundaryDedup(state, track_from=lower)
        newest = lower
        # Search has its own limit (5/s per account), separate from the ten-second burst budget.
        search_session = runtime.session(budget=budget_for("hubspot-search", runtime.connection_id,
                                                           SEARCH_RATE_LIMIT))
        for results in search_pages(search_session, runtime.base_url + SEARCH_PATH.format(object=spec.name),
                                    spec.cursor_property, lower, properties):
            merge_associations(session, runtime.base_url, spec.name, results, spec.associations)
            table = page_table(results, runtime.connection_id, started)
            newest = max(newest, table["remote_updated_at"][-1].as_py())
            yield dedup.filter(table)
        next_cursor = min(newest, settle_point) if newest > lower else lower + runtime.lookback

    yield from _archived(runtime, session, url_list, state, started, spec)
    dedup.commit(next_cursor - runtime.lookback)
    state["cursor"] = next_cursor.isoformat()


def _archived(runtime: ConnectionRuntime, session, url: str, state: dict, started: datetime,
              spec: CrmObject) -> Iterator[pa.Table]:
    """Archived (soft-deleted) records, with every property (so the deleted row keeps its last values);
    those already recorded are dropped by their archive time."""
    archive_cursor = state.get("archive_cursor")
    since = datetime.fromisoformat(archive_cursor) if archive_cursor else datetime(1970, 1, 1, tzinfo=UTC)
    dedup = BoundaryDedup(state, track_from=since, key="archived_seen")
    newest = since
    params = {"limit": LIST_PAGE_SIZE, "archived": "true", "properties": ",".join(spec.properties)}
    if spec.associations:
        params["associations"] = ",".join(spec.associations)
    for results in list_pages(session, url, params):
        table = page_table(results, runtime.connection_id, started, archived=True)
        table = table.filter(pa.compute.greater_equal(table["remote_updated_at"], pa.scalar(since, table.schema.field(
            "remote_updated_at").type)))
        if table.num_rows:
            newest = max(newest, pa.compute.max(table["remote_updated_at"]).as_py())
            table = dedup.filter(table)
            if table.num_rows:
                yield table
    dedup.commit(newest)
    state["archive_cursor"] = newest.isoformat()


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
