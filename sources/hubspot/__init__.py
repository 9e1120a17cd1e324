"""HubSpot CRM source: contacts, companies, deals, owners and deal pipelines into `raw_hubspot`.

Full sync reads the list endpoints (100 per page, associations inline); incremental sync reads the
search endpoint from the stored cursor (200 per page, inclusive lower bound, boundary de-duplication,
the 10,000-result cap worked around). Deletes come from `archived=true` listings.
Custom properties (opt-in object `custom_properties`): their definitions are read once per run, written
to `raw_hubspot.custom_properties` when new or changed, and contacts, companies and deals are read with
those properties too (sources/hubspot/README.md, "Custom fields").
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from canonry.checkpoints import CATCH_UP
from canonry.http_budget import budget_for
from canonry.raw import RAW_COLUMNS_HINT, BoundaryDedup
from canonry.runtime import RESUME_KEY, ConnectionRuntime, PageBudget, until_stopped

from .helpers import (
    custom_property_table,
    list_pages,
    list_pages_from,
    merge_associations,
    page_table,
    search_pages_from,
)
from .settings import (
    ASSOCIATION_BATCH,
    CRM_OBJECTS,
    CUSTOM_PROPERTY_OBJECTS,
    LIST_PAGE_SIZE,
    OBJECTS,
    OBJECTS_PATH,
    OPT_IN_OBJECTS,
    OWNERS_PATH,
    PIPELINES_PATH,
    PROPERTIES_PATH,
    SEARCH_PAGE_SIZE,
    SEARCH_PATH,
    SEARCH_RATE_LIMIT,
    SETTLE_SECONDS,
    CrmObject,
)


@dlt.source(name="hubspot", max_table_nesting=0)
def source(runtime: ConnectionRuntime):
    """One resource per object the connection syncs."""
    wanted = [name for name in OBJECTS if runtime.wants(name)
              and (name not in OPT_IN_OBJECTS or name in (runtime.objects or ()))]
    catalog = _CustomProperties(runtime) if "custom_properties" in wanted else None
    concurrent = _full_pass(runtime, [name for name in wanted if name in CRM_OBJECTS])
    for name in wanted:
        # A 429 storm longer than the retries (or a spent quota) ends the run at its last checkpoint
        # (`until_stopped`); resumable objects keep the pages read before it (see the phases).
        if name in CRM_OBJECTS:
            items = _crm_object(runtime, CRM_OBJECTS[name], catalog)
        elif name == "custom_properties":
            items = _custom_properties(runtime, catalog)
        elif name == "owners":
            items = _owners(runtime)
        elif name == "pipelines":
            items = _pipelines(runtime)
        else:
            continue
        yield dlt.resource(until_stopped(runtime, items), name=name, write_disposition="append",
                           columns=RAW_COLUMNS_HINT, parallelized=concurrent)


def _full_pass(runtime: ConnectionRuntime, crm_objects: list[str]) -> bool:
    """Whether this run reads its objects concurrently: when a CRM object is in a full pass (list pages).

    Concurrent, each object is its own generator in dlt's extract thread pool: the connection's one rate
    budget paces them all (a full sync reaches the published limit under real latency instead of half of
    it, benchmarks/README.md), the first 401 stops every reader (`runtime.credential_halt`), and each
    object's pages, order and checkpoint are its own as before. An incremental run stays sequential: its
    search pages share the 4/s search budget whatever the threads, and one reader at a time means one
    request in flight when a credential dies — exactly one 401 (concurrent readers each get an answer
    to the request already on the wire when the credential dies: at most one per object)."""
    if not runtime.concurrent_reads:
        return False
    if runtime.options.get("full_refresh"):
        return True
    resources = dlt.current.source_state().get("resources", {})
    return any(resources.get(name, {}).get("cursor") is None
               or (resources[name].get(RESUME_KEY) or {}).get("phase") == "list" for name in crm_objects)


class _CustomProperties:
    """The custom property definitions of one run, fetched once per object on first use (the
    custom_properties resource and the object resources share them)."""

    def __init__(self, runtime: ConnectionRuntime) -> None:
        self.runtime = runtime
        self.lock = threading.Lock()
        self.fetched: dict[str, list[dict]] = {}

    def definitions(self, object_name: str) -> list[dict]:
        with self.lock:
            if object_name not in self.fetched:
                body = self.runtime.session().get_json(
                    self.runtime.base_url + PROPERTIES_PATH.format(object=object_name))
                self.fetched[object_name] = [p for p in body.get("results", [])
                                             if p.get("hubspotDefined") is False and not p.get("archived")]
            return self.fetched[object_name]

    def names(self, object_name: str) -> tuple[str, ...]:
        if object_name not in CUSTOM_PROPERTY_OBJECTS:
            return ()
        return tuple(p["name"] for p in self.definitions(object_name))


def _custom_properties(runtime: ConnectionRuntime, catalog: _CustomProperties) -> Iterator[pa.Table]:
    """Custom property definitions, written when new or changed (label, type, options: fingerprints in state)."""
    state = dlt.current.resource_state()
    known: dict[str, str] = state.setdefault("fingerprints", {})
    started = datetime.now(UTC)
    for object_name in CUSTOM_PROPERTY_OBJECTS:
        table, fingerprints = custom_property_table(catalog.definitions(object_name), object_name, known,
                                                    runtime.connection_id, started)
        known.update(fingerprints)
        if table is not None:
            yield table


def _crm_object(runtime: ConnectionRuntime, spec: CrmObject,
                catalog: _CustomProperties | None = None) -> Iterator[pa.Table]:
    """Resumable (settings.RESUMABLE): one pipeline run takes at most `runtime.checkpoint_pages` pages
    and yields them as **one** arrow table, with `state["resume"]` saying where the next run continues
    (dlt commits table and state in one package: a checkpoint). The cursor moves only when every phase
    is done. One item per checkpoint, not per page: dlt's per-item cost is several milliseconds.
    A run stopped by the provider (`runtime.interrupted`) keeps the pages read so far and their position."""
    if catalog is not None:
        spec = replace(spec, properties=spec.properties + catalog.names(spec.name))
    state = dlt.current.resource_state()
    saved = state.get(RESUME_KEY)
    resume = saved if saved and CATCH_UP not in saved else _new_pass(runtime, state)
    started = datetime.fromisoformat(resume["started"])
    budget = runtime.page_budget()
    tables: list[pa.Table] = []
    if resume["phase"] == "list":
        resume = _list_phase(runtime, spec, state, resume, budget, tables)
    elif resume["phase"] == "search":
        resume = _search_phase(runtime, spec, state, resume, budget, tables)
    if resume["phase"] == "archived" and budget.left:
        resume = _archived_phase(runtime, spec, state, resume, budget, tables)
    if resume["phase"] == "done":
        # Every phase done: the cursor moves and the checkpoint is cleared (same package as the pages).
        next_cursor = datetime.fromisoformat(resume["next_cursor"])
        dedup = BoundaryDedup(state, track_from=datetime.fromisoformat(resume["track_from"]))
        dedup.emitted = dict(resume["emitted"])
        dedup.commit(next_cursor - runtime.lookback)
        state["cursor"] = next_cursor.isoformat()
        if resume.get("run") == runtime.run_id:
            state.pop(RESUME_KEY, None)
        else:
            # The pass began in an earlier run (the kit's rule, canonry.checkpoints): a fresh one follows.
            state[RESUME_KEY] = {CATCH_UP: True}
    else:
        state[RESUME_KEY] = resume
    rows = [t for t in tables if t.num_rows]
    yield pa.concat_tables(rows) if rows else page_table([], runtime.connection_id, started)


def _new_pass(runtime: ConnectionRuntime, state: dict) -> dict:
    """Where a pass starts: the list endpoint (full sync) or search from the stored cursor."""
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
    return {**resume, "emitted": {}, "run": runtime.run_id}


def _list_params(spec: CrmObject, archived: bool) -> dict:
    params = {"limit": LIST_PAGE_SIZE, "properties": ",".join(spec.properties), "archived": str(archived).lower()}
    if spec.associations:
        params["associations"] = ",".join(spec.associations)
    return params


def _list_phase(runtime: ConnectionRuntime, spec: CrmObject, state: dict, resume: dict, budget: PageBudget,
                tables: list[pa.Table]) -> dict:
    """Full sync: list pages (associations inline) from `resume["after"]` while the budget lasts."""
    started = datetime.fromisoformat(resume["started"])
    dedup = BoundaryDedup(state, track_from=datetime.fromisoformat(resume["track_from"]))
    dedup.emitted = dict(resume["emitted"])
    url = runtime.base_url + OBJECTS_PATH.format(object=spec.name)
    after = resume["after"]
    for results, after in until_stopped(runtime, list_pages_from(runtime.session(), url, _list_params(spec, False),
                                                                 resume["after"])):
        tables.append(dedup.filter(page_table(results, runtime.connection_id, started)))
        if not budget.take() or after is None:
            break
    resume = {**resume, "after": after, "emitted": dict(dedup.emitted)}
    return _to_archived(resume, resume["next_cursor"]) if after is None and not runtime.interrupted else resume


def _search_phase(runtime: ConnectionRuntime, spec: CrmObject, state: dict, resume: dict, budget: PageBudget,
                  tables: list[pa.Table]) -> dict:
    """Incremental sync: search pages from the stored position; their associations are read in v4 batches
    of up to `ASSOCIATION_BATCH` ids, across search pages (one read per target per 5 pages, not per page)."""
    started = datetime.fromisoformat(resume["started"])
    settle_point = started - timedelta(seconds=SETTLE_SECONDS)
    lower, newest = datetime.fromisoformat(resume["lower"]), datetime.fromisoformat(resume["newest"])
    dedup = BoundaryDedup(state, track_from=datetime.fromisoformat(resume["track_from"]))
    dedup.emitted = dict(resume["emitted"])
    session = runtime.session()
    # Search has its own limit (5/s per account), separate from the ten-second burst budget.
    search_session = runtime.session(budget=budget_for("hubspot-search", runtime.connection_id, SEARCH_RATE_LIMIT))
    position: list | None = resume["position"]
    pending: list[dict] = []

    def flush() -> None:
        nonlocal newest
        merge_associations(session, runtime.base_url, spec.name, pending, spec.associations)
        table = page_table(pending, runtime.connection_id, started)
        if table.num_rows:
            newest = max(newest, pc.max(table["remote_updated_at"]).as_py())
        tables.append(dedup.filter(table))
        pending.clear()

    for results, following in until_stopped(runtime, search_pages_from(
            search_session, runtime.base_url + SEARCH_PATH.format(object=spec.name), spec.cursor_property,
            tuple(position), list(spec.properties))):
        pending.extend(results)
        position = list(following) if following else None
        if len(pending) + SEARCH_PAGE_SIZE > ASSOCIATION_BATCH:
            flush()
        if not budget.take() or position is None:
            break
    if pending:
        flush()
    resume = {**resume, "position": position, "newest": newest.isoformat(), "emitted": dict(dedup.emitted)}
    if position is None and not runtime.interrupted:
        next_cursor = min(newest, settle_point) if newest > lower else lower + runtime.lookback
        resume = _to_archived(resume, next_cursor.isoformat())
    return resume


def _to_archived(resume: dict, next_cursor: str) -> dict:
    return {**resume, "phase": "archived", "next_cursor": next_cursor, "after": None, "archived_emitted": {},
            "archive_newest": None}


def _archived_phase(runtime: ConnectionRuntime, spec: CrmObject, state: dict, resume: dict, budget: PageBudget,
                    tables: list[pa.Table]) -> dict:
    """Archived (soft-deleted) records, with every property (so the deleted row keeps its last values);
    those already recorded are dropped by their archive time."""
    started = datetime.fromisoformat(resume["started"])
    archive_cursor = state.get("archive_cursor")
    since = datetime.fromisoformat(archive_cursor) if archive_cursor else datetime(1970, 1, 1, tzinfo=UTC)
    dedup = BoundaryDedup(state, track_from=since, key="archived_seen")
    dedup.emitted = dict(resume["archived_emitted"])
    newest = datetime.fromisoformat(resume["archive_newest"]) if resume["archive_newest"] else since
    url = runtime.base_url + OBJECTS_PATH.format(object=spec.name)
    after = resume["after"]
    for results, after in until_stopped(runtime, list_pages_from(runtime.session(), url, _list_params(spec, True),
                                                                 resume["after"])):
        table = page_table(results, runtime.connection_id, started, archived=True)
        table = table.filter(pc.greater_equal(table["remote_updated_at"],
                                              pa.scalar(since, table.schema.field("remote_updated_at").type)))
        if table.num_rows:
            newest = max(newest, pc.max(table["remote_updated_at"]).as_py())
            tables.append(dedup.filter(table))
        if not budget.take() or after is None:
            break
    if runtime.interrupted:
        return {**resume, "after": after, "archived_emitted": dict(dedup.emitted),
                "archive_newest": newest.isoformat()}
    if after is None:
        dedup.commit(newest)
        state["archive_cursor"] = newest.isoformat()
    return {**resume, "after": after, "archived_emitted": dict(dedup.emitted), "archive_newest": newest.isoformat(),
            "phase": "archived" if after else "done"}


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
