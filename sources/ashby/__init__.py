"""Ashby source: candidates, applications, jobs, interview schedules, offers and the organisation's
metadata (users, departments, locations, archive reasons, sources, interview plans and stages) into
`raw_ashby`.

Sync-token objects: the first run is a full pass; later runs send the stored `syncToken` and read only
what changed since the previous pass (archival and status changes included). The new token is stored
in the resource's dlt state only after the pass has finished (dlt commits state with the load). A token
Ashby refuses (`sync_token_expired`, `sync_token_invalid`, `incremental_sync_too_large`, cursor errors)
is discarded and a full pass runs instead, automatically (logged, counted in state and in
`raw_ashby.full_passes.payload.reason`). A full pass also runs every `deletes.full_scan_every`: each
completed full pass writes a marker row, and staging flags records absent from the latest full pass as
deleted (Ashby has no deleted feed; a GDPR-deleted candidate simply disappears).
Whole-list objects are small: read every run with archived records included, only changed records are
written (fingerprints in state), and records that vanish get a tombstone. Custom field definitions
(`customField.list`, opt-in object `custom_fields`) are such a whole list (sources/ashby/README.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import dlt
import pyarrow as pa

from canonry.checkpoints import ResumablePass
from canonry.durations import parse_duration
from canonry.errors import CanonryError, ErrorClass
from canonry.raw import RAW_COLUMNS_HINT
from canonry.runtime import ConnectionRuntime, until_stopped

from .helpers import (
    Pass,
    SyncTokenRejected,
    call,
    fingerprint,
    full_pass_marker,
    page_table,
    session_for,
    tombstones,
)
from .settings import (
    DEFAULT_FULL_SCAN_EVERY,
    ENDPOINTS,
    FULL_PASSES_TABLE,
    INTERVIEW_PLANS,
    OPT_IN_OBJECTS,
    Endpoint,
)

log = logging.getLogger("canonry.sources.ashby")


@dlt.source(name="ashby", max_table_nesting=0)
def source(runtime: ConnectionRuntime):
    """One resource per object the connection syncs."""
    for name, endpoint in ENDPOINTS.items():
        if not runtime.wants(name) or (name in OPT_IN_OBJECTS and name not in (runtime.objects or ())):
            continue
        if endpoint.sync_token:
            items = _synced(runtime, endpoint)
        elif name == INTERVIEW_PLANS:
            # Stages are listed per plan: one resource reads both (plans listed once per run).
            items = _interview_plans(runtime, with_stages=runtime.wants("interview_stages"))
        elif name == "interview_stages":
            if runtime.wants(INTERVIEW_PLANS):
                continue
            items = _interview_plans(runtime, with_stages=True, with_plans=False)
        else:
            items = _whole_list(runtime, endpoint)
        # A 429 storm longer than the retries ends the run cleanly: what was read is committed, cursors
        # (sync tokens, fingerprints) move only with a finished pass, the next run continues.
        yield dlt.resource(until_stopped(runtime, items, whole=endpoint.sync_token), name=name,
                           write_disposition="append", columns=RAW_COLUMNS_HINT)


def _url(runtime: ConnectionRuntime, endpoint: Endpoint) -> str:
    return f"{runtime.base_url}/{endpoint.method}"


def _full_pass_reason(runtime: ConnectionRuntime, state: dict, started: datetime) -> str | None:
    """Why this run must be a full pass, or None for an incremental one."""
    if runtime.options.get("full_refresh"):
        return "full_refresh"
    if not state.get("sync_token"):
        return "first_sync"
    last_full = state.get("last_full_pass_at")
    every = parse_duration(runtime.options.get("full_scan_every") or DEFAULT_FULL_SCAN_EVERY)
    if last_full is None or started - datetime.fromisoformat(last_full) >= every:
        return "key_scan"
    return None


def _synced(runtime: ConnectionRuntime, endpoint: Endpoint) -> Iterator:
    """Resumable (SPEC.resumable): a pass (full, or incremental from the sync token) checkpointed at its
    `nextCursor` (`canonry.checkpoints`); the new sync token and the full-pass marker are stored when it ends."""
    state = dlt.current.resource_state()
    session = session_for(runtime)
    url = _url(runtime, endpoint)

    def begin(started: datetime) -> dict:
        reason = _full_pass_reason(runtime, state, started)
        return {"full": reason is not None, "reason": reason, "token": None if reason else state["sync_token"],
                "records": 0, "pages": 0}

    pass_ = ResumablePass(runtime, endpoint.name, state, begin)
    resume, started = pass_.resume, pass_.started
    listing = Pass(session, url, sync_token=resume["token"])
    try:
        for results in pass_.pages(listing.pages_from):
            resume["records"] += len(results)
            if results:
                pass_.add(page_table(results, endpoint, runtime.connection_id, started))
    except SyncTokenRejected as exc:
        if resume["full"]:
            raise CanonryError(ErrorClass.PROVIDER_CONTRACT,
                               f"Ashby refused its own cursor during a full pass (`{exc.code}`: {exc.message}); "
                               "re-run the sync", provider="ashby", connection_id=runtime.connection_id,
                               endpoint=f"/{endpoint.method}", status=200) from None
        # Pages already read stay: they are current versions, and the full pass (the next checkpoint of
        # this run) re-reads them.
        state["sync_token"] = None
        state["fallbacks"] = state.get("fallbacks", 0) + 1
        state["last_fallback"] = {"code": exc.code, "at": started.isoformat()}
        log.warning("ashby %s (connection %s): sync token refused (%s); running a full pass instead",
                    endpoint.method, runtime.connection_id, exc.code)
        resume.update(full=True, reason=exc.code, token=None, position=None, records=0, pages=0)
    resume["pages"] += listing.pages
    if pass_.finished:
        if resume["full"]:
            pass_.add(full_pass_marker(endpoint.name, started, runtime.connection_id, resume["records"],
                                       resume["reason"], resume["pages"]), FULL_PASSES_TABLE)
            state["last_full_pass_at"] = started.isoformat()
            state["full_passes"] = state.get("full_passes", 0) + 1
        else:
            state["incremental_passes"] = state.get("incremental_passes", 0) + 1
        state["sync_token"] = listing.sync_token
    yield from pass_.commit()


def _changed_only(runtime: ConnectionRuntime, endpoint: Endpoint, state: dict, records: list[dict],
                  started: datetime) -> Iterator[pa.Table]:
    """Write records whose content changed since the last run, and tombstones for vanished ones."""
    key = f"fingerprints_{endpoint.name}"
    known: dict[str, str] = dict(state.get(key, {}))
    current = {r["id"]: fingerprint(r) for r in records}
    changed = [r for r in records if known.get(r["id"]) != current[r["id"]]]
    if changed:
        yield page_table(changed, endpoint, runtime.connection_id, started)
    gone = sorted(set(known) - set(current))
    if gone:
        yield tombstones(gone, runtime.connection_id, started)
    state[key] = current


def _whole_list(runtime: ConnectionRuntime, endpoint: Endpoint) -> Iterator[pa.Table]:
    state = dlt.current.resource_state()
    started = datetime.now(UTC)
    extra = {endpoint.archived_flag: True} if endpoint.archived_flag else {}
    records = [r for page in Pass(session_for(runtime), _url(runtime, endpoint), extra) for r in page]
    yield from _changed_only(runtime, endpoint, state, records, started)


def _interview_plans(runtime: ConnectionRuntime, *, with_stages: bool, with_plans: bool = True) -> Iterator:
    """Interview plans (archived included), then each plan's stages (`interviewStage.list` needs an
    `interviewPlanId`: one call per plan) into `raw_ashby.interview_stages`."""
    state = dlt.current.resource_state()
    session = session_for(runtime)
    started = datetime.now(UTC)
    plans_endpoint = ENDPOINTS[INTERVIEW_PLANS]
    plans = [p for page in Pass(session, _url(runtime, plans_endpoint), {plans_endpoint.archived_flag: True})
             for p in page]
    if with_plans:
        yield from _changed_only(runtime, plans_endpoint, state, plans, started)
    if not with_stages:
        return
    endpoint = ENDPOINTS["interview_stages"]
    stages: list[dict] = []
    for plan in plans:
        stages.extend(call(session, _url(runtime, endpoint), {"interviewPlanId": plan["id"]})["results"])
    for table in _changed_only(runtime, endpoint, state, stages, started):
        yield dlt.mark.with_table_name(table, endpoint.name) if with_plans else table
