"""Greenhouse Harvest v3 source: candidates, applications, jobs, job stages, scheduled interviews, offers,
departments, offices and users into `raw_greenhouse`.

Auth is OAuth client credentials through the kit (`canonry.oauth_tokens.client_credentials_credential`). Every list
is read at the maximum page size (500), following `Link rel="next"` cursors exactly. Incremental runs
ask for `updated_at=gte|<cursor - lookback>` (inclusive; boundary de-duplication). Greenhouse has no delete
feed, so a periodic full key scan (`full_scan_every`, default daily; the first sync is one) lists every
record, writes the ids it saw to `<object>_key_scans`, and stands in for that run's incremental read;
staging flags records missing from the latest completed scan as deleted.
Custom field definitions (opt-in object `custom_fields`): `/v3/custom_fields` read whole every run, written
when new or changed; dbt names the records' `custom_fields` with them (sources/greenhouse/README.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dlt
import pyarrow as pa

from canonry.checkpoints import ResumablePass
from canonry.durations import parse_duration
from canonry.raw import RAW_COLUMNS_HINT
from canonry.runtime import ConnectionRuntime, until_stopped

from .helpers import (
    custom_field_definitions_table,
    iso_z,
    key_scan_marker,
    key_scan_table,
    page_table,
    pages,
    pages_from,
    session_for,
    since,
)
from .settings import (
    CUSTOM_FIELDS_PATH,
    DEFAULT_FULL_SCAN_EVERY,
    FILTER_FORMAT,
    KEY_SCAN_SUFFIX,
    LIST_PATH,
    OBJECTS,
    OPT_IN_OBJECTS,
    PER_PAGE,
    SETTLE_SECONDS,
    UPDATED_FILTER,
)


@dlt.source(name="greenhouse", max_table_nesting=0)
def source(runtime: ConnectionRuntime):
    """One resource per object the connection syncs (its key scans go to `<object>_key_scans`)."""
    for name in OBJECTS:
        if name in OPT_IN_OBJECTS and name not in (runtime.objects or ()):
            continue
        if name == "custom_fields":
            yield dlt.resource(until_stopped(runtime, _custom_fields(runtime)), name=name, write_disposition="append",
                               columns=RAW_COLUMNS_HINT)
        elif runtime.wants(name):
            # A 429 storm past the retries ends the run cleanly (`until_stopped`) at the pass's last
            # checkpoint; the next run continues the pass from there.
            yield dlt.resource(until_stopped(runtime, _object(runtime, name), whole=True), name=name,
                               write_disposition="append", columns=RAW_COLUMNS_HINT)


def scan_due(state: dict, runtime: ConnectionRuntime, now: datetime) -> bool:
    """A key scan runs on the first sync, on a full refresh, when forced, or when the last is old enough."""
    if state.get("cursor") is None or runtime.options.get("full_refresh") or runtime.options.get("force_key_scan"):
        return True
    last = state.get("last_key_scan")
    every = parse_duration(runtime.options.get("full_scan_every") or DEFAULT_FULL_SCAN_EVERY)
    return last is None or now - datetime.fromisoformat(last) >= every


def _object(runtime: ConnectionRuntime, name: str) -> Iterator:
    """Resumable (SPEC.resumable): a pass, key scan or incremental read, checkpointed at its next-page URL
    (`canonry.checkpoints`); its cursor and the key scan's completion marker are written when it ends."""
    state = dlt.current.resource_state()
    session = session_for(runtime)
    credential = runtime.credential
    url = runtime.base_url + LIST_PATH.format(resource=name)

    def begin(started: datetime) -> dict:
        cursor = state.get("cursor")
        full = cursor is None or bool(runtime.options.get("full_refresh"))
        lower = None if full else datetime.fromisoformat(cursor) - runtime.lookback
        return {"full": full, "lower": lower.isoformat() if lower else None,
                "scan": scan_due(state, runtime, started), "ids_seen": 0}

    pass_ = ResumablePass(runtime, name, state, begin)
    resume, started = pass_.resume, pass_.started
    settle_point = started - timedelta(seconds=SETTLE_SECONDS)
    lower = datetime.fromisoformat(resume["lower"]) if resume["lower"] else None
    dedup = pass_.dedup(track_from=lower if lower is not None else settle_point - runtime.lookback)

    if resume["scan"]:
        # One pass over everything: the key scan, and (rows changed since the cursor) this run's increment.
        for records in pass_.pages(lambda at: pages_from(session, credential, url, {"per_page": PER_PAGE}, at)):
            table = page_table(records, runtime.connection_id, started)
            resume["ids_seen"] += table.num_rows
            pass_.add(key_scan_table(table, started), name + KEY_SCAN_SUFFIX)
            pass_.add(dedup.filter(table if lower is None else since(table, lower)))
        if pass_.finished:
            pass_.add(key_scan_marker(runtime.connection_id, started, resume["ids_seen"]), name + KEY_SCAN_SUFFIX)
            state["last_key_scan"] = started.isoformat()
    else:
        params = {"per_page": PER_PAGE, UPDATED_FILTER: FILTER_FORMAT.format(at=iso_z(lower))}
        for records in pass_.pages(lambda at: pages_from(session, credential, url, params, at)):
            pass_.add(dedup.filter(page_table(records, runtime.connection_id, started)))

    if pass_.finished:
        dedup.commit(settle_point - runtime.lookback)
        state["cursor"] = settle_point.isoformat()
    yield from pass_.commit()


def _custom_fields(runtime: ConnectionRuntime) -> Iterator[pa.Table]:
    """Custom field definitions of every field type, read whole every run, written when new or changed."""
    state = dlt.current.resource_state()
    known: dict[str, str] = state.setdefault("fingerprints", {})
    session = session_for(runtime)
    started = datetime.now(UTC)
    for records in pages(session, runtime.credential, runtime.base_url + CUSTOM_FIELDS_PATH, {"per_page": PER_PAGE}):
        table, fingerprints = custom_field_definitions_table(records, known, runtime.connection_id, started)
        known.update(fingerprints)
        if table is not None:
            yield table
