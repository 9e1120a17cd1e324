"""Salesforce source: Account, Contact, Lead, Opportunity, OpportunityStage, User, Task, Event, Note into
`raw_salesforce`.

Each object is one SOQL query built from its declared field list (settings.py), ordered by
`SystemModstamp, Id`, 2,000 records per batch. The first run reads everything with `query`; later runs read
`queryAll ... WHERE SystemModstamp >= <cursor - lookback>` (changes and soft deletes with their full bodies),
dropping versions already loaded at the boundary (`BoundaryDedup`). Deletes purged from the recycle bin
come from getDeleted as tombstones; when getDeleted's `earliestDateAvailable` is later than the last point
we covered (the 15-day window lapsed), a key scan (`SELECT Id`) flags every record we hold that is gone.

The daily API allocation: `REQUEST_LIMIT_EXCEEDED` ("TotalRequests Limit exceeded.") is `quota_exhausted`;
it, and `rate_limited` answers that outlast the retries (a 429 storm), stop the run the same way. The resource stops, checkpoints the modstamp of the last fully loaded batch (plus the ids loaded at that
stamp) and returns normally; the pipeline commits the pages loaded so far and records the run `partial`.
The next run resumes exactly there: no gaps, no duplicates.

Custom fields (opt-in object `custom_fields`): Account, Contact and Opportunity are described once per run,
their `__c` fields selected with the declared ones, and the definitions written to
`raw_salesforce.custom_fields` when new or changed (sources/salesforce/README.md, "Custom fields").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from canonry.errors import CanonryError, ErrorClass
from canonry.raw import RAW_COLUMNS_HINT, BoundaryDedup
from canonry.runtime import ConnectionRuntime, stops_run

from .helpers import (
    CustomFieldCatalog,
    SalesforceClient,
    build_soql,
    custom_field_definitions_table,
    page_table,
    parse_sf_datetime,
    soql_datetime,
    tombstone_table,
)
from .settings import (
    CUSTOM_FIELD_SOBJECTS,
    DESCRIBE_TTL_HOURS,
    OBJECTS,
    OPT_IN_OBJECTS,
    SETTLE_SECONDS,
    SOBJECTS,
    SObject,
)


@dlt.source(name="salesforce", max_table_nesting=0)
def source(runtime: ConnectionRuntime):
    """One resource per object the connection syncs."""
    wanted = [name for name in OBJECTS if runtime.wants(name)
              and (name not in OPT_IN_OBJECTS or name in (runtime.objects or ()))]
    catalog = CustomFieldCatalog(runtime) if "custom_fields" in wanted else None
    for name in wanted:
        rows = _custom_fields(runtime, catalog) if name == "custom_fields" else _sobject(runtime, SOBJECTS[name],
                                                                                          catalog)
        yield dlt.resource(rows, name=name, write_disposition="append", columns=RAW_COLUMNS_HINT)


def _custom_fields(runtime: ConnectionRuntime, catalog: CustomFieldCatalog) -> Iterator[pa.Table]:
    """Custom field definitions, written when new or changed (fingerprints in state)."""
    if runtime.interrupted is not None:
        return
    state = dlt.current.resource_state()
    known: dict[str, str] = state.setdefault("fingerprints", {})
    started = datetime.now(UTC)
    for sobject in CUSTOM_FIELD_SOBJECTS:
        table, fingerprints = custom_field_definitions_table(catalog, sobject, known, runtime.connection_id, started)
        known.update(fingerprints)
        if table is not None:
            yield table


def _sobject(runtime: ConnectionRuntime, spec: SObject, catalog: CustomFieldCatalog | None = None,
             ) -> Iterator[pa.Table]:
    if runtime.interrupted is not None:   # the daily budget is spent: spend no more calls this run
        return
    state = dlt.current.resource_state()
    client = SalesforceClient(runtime)
    started = datetime.now(UTC)
    settle_point = started - timedelta(seconds=SETTLE_SECONDS)
    cursor = state.get("cursor")
    full = cursor is None or bool(runtime.options.get("full_refresh"))
    previous = None if full else datetime.fromisoformat(cursor)
    lower = None
    if previous is not None:
        exact = state.get("resume_exact", False)
        lower = (previous if exact else previous - runtime.lookback).replace(microsecond=0)
    dedup = BoundaryDedup(state, track_from=lower if lower is not None else settle_point - runtime.lookback)
    newest: datetime | None = lower
    tail: dict[str, str] = {}         # versions loaded at the newest modstamp (the resume boundary)
    deleted_now: dict[str, str] = dict(state.get("deleted_seen", {}))
    try:
        fields = _fields(client, spec, state, started, catalog)
        for records in client.query_batches(build_soql(spec, fields, lower), include_deleted=not full):
            if not records:
                continue
            table = page_table(records, runtime.connection_id, started)
            stamps = table["remote_updated_at"].to_pylist()
            last = stamps[-1]
            if newest is None or last > newest:
                tail = {}
                newest = last
            as_text = pc.cast(table["remote_updated_at"], pa.string()).to_pylist()
            tail.update({rid: text for rid, ts, text in zip(table["remote_id"].to_pylist(), stamps, as_text,
                                                            strict=True) if ts == last})
            deleted_now.update({r["Id"]: r.get("SystemModstamp") for r in records if r.get("IsDeleted")})
            yield dedup.filter(table)
        if spec.deletes:
            yield from _deletes(runtime, client, spec, state, started, previous, deleted_now)
    except CanonryError as exc:
        if not stops_run(exc):   # a spent daily budget, or a 429 storm longer than the retries
            raise
        runtime.interrupted = exc
        if newest is not None and newest != lower:
            # Checkpoint at the last fully loaded batch: resume at its modstamp, skipping what it loaded there.
            dedup.emitted.update(tail)
            dedup.commit(newest)
            state["cursor"] = newest.isoformat()
            state["resume_exact"] = True
        return
    next_cursor = settle_point if full else max(previous, min(newest, settle_point)) if newest else previous
    dedup.commit(next_cursor - runtime.lookback)
    state["cursor"] = next_cursor.isoformat()
    state["resume_exact"] = False
    if full:
        state["deleted_until"] = started.isoformat()
        state["deleted_seen"] = {}


def _fields(client: SalesforceClient, spec: SObject, state: dict, now: datetime,
            catalog: CustomFieldCatalog | None = None) -> list[str]:
    """The declared fields the org has: describe once a day per object (cached in resource state). With
    custom fields opted in, the run's shared describe instead, plus the object's custom fields (not cached:
    a custom field added today is read today)."""
    if catalog is not None and catalog.covers(spec.name):
        body = catalog.describe(spec.name)
        custom = [f["name"] for f in catalog.custom_fields(spec.name)]
        fields = _declared_fields(client, spec, body)
        return fields + [f for f in custom if f not in fields]
    described_at = state.get("described_at")
    if described_at and now - datetime.fromisoformat(described_at) < timedelta(hours=DESCRIBE_TTL_HOURS):
        return list(state["fields"])
    body = client.get(f"{client.api}/sobjects/{spec.name}/describe")
    state["fields"], state["described_at"] = _declared_fields(client, spec, body), now.isoformat()
    return list(state["fields"])


def _declared_fields(client: SalesforceClient, spec: SObject, body: dict) -> list[str]:
    available = {f["name"] for f in body.get("fields", [])}
    missing = [f for f in spec.select() if f not in available and f not in spec.optional]
    if missing:
        raise CanonryError(ErrorClass.PERMISSION_DENIED, f"{spec.name} lacks fields {', '.join(missing)} (field-level "
                           "security or an org without them)", provider="salesforce",
                           connection_id=client.runtime.connection_id, endpoint=f"/sobjects/{spec.name}/describe")
    return spec.select(available)


def _deletes(runtime: ConnectionRuntime, client: SalesforceClient, spec: SObject, state: dict, started: datetime,
             previous: datetime | None, deleted_now: dict[str, str]) -> Iterator[pa.Table]:
    """Deletes the recycle bin no longer shows: getDeleted since the last covered point, or a key scan when
    the delete log no longer reaches back that far."""
    if previous is None:
        return
    since = datetime.fromisoformat(state.get("deleted_until") or previous.isoformat())
    # The window is sent at second precision: a run starting in the same second as the last covered point
    # has nothing to ask for (start == end is refused: INVALID_REPLICATION_DATE).
    start, end = (since - runtime.lookback).replace(microsecond=0), started.replace(microsecond=0)
    if start >= end:
        return
    body = client.get(f"{client.api}/sobjects/{spec.name}/deleted/",
                      params={"start": soql_datetime(start), "end": soql_datetime(end)})
    earliest = parse_sf_datetime(body["earliestDateAvailable"])
    covered = body.get("latestDateCovered") or soql_datetime(end)
    if earliest > start:
        yield from _key_scan(runtime, client, spec, started)
    else:
        fresh = [(d["id"], d["deletedDate"]) for d in body.get("deletedRecords", []) if d["id"] not in deleted_now]
        if fresh:
            yield tombstone_table(spec.name, fresh, runtime.connection_id, started, "getDeleted")
        deleted_now.update(dict(fresh))
    until = parse_sf_datetime(covered)
    state["deleted_until"] = until.isoformat()
    bound = (until - runtime.lookback).isoformat()
    state["deleted_seen"] = {k: v for k, v in deleted_now.items()
                             if v and parse_sf_datetime(v).isoformat() >= bound}


def _key_scan(runtime: ConnectionRuntime, client: SalesforceClient, spec: SObject,
              started: datetime) -> Iterator[pa.Table]:
    """Every id the org still has vs. every live id we hold: the difference was deleted while we could not see."""
    alive: set[str] = set()
    for records in client.query_batches(f"SELECT Id FROM {spec.name} ORDER BY Id ASC", include_deleted=False):
        alive.update(r["Id"] for r in records)
    gone = sorted(_loaded_live_ids(spec.resource) - alive)
    if gone:
        stamp = started.strftime("%Y-%m-%dT%H:%M:%S.") + f"{started.microsecond // 1000:03d}+0000"
        yield tombstone_table(spec.name, [(rid, stamp) for rid in gone], runtime.connection_id, started, "key_scan")


def _loaded_live_ids(table: str) -> set[str]:
    """Ids whose latest loaded version is not deleted (read from the destination; empty before a load)."""
    pipeline = dlt.current.pipeline()
    try:
        with pipeline.sql_client() as client:
            name = client.make_qualified_table_name(table)
            rows = client.execute_sql(
                f"select remote_id from (select remote_id, is_deleted, row_number() over (partition by remote_id "
                f"order by remote_updated_at desc, _dlt_load_id desc) as n from {name}) where n = 1 "
                "and not is_deleted")
    except Exception:  # noqa: BLE001 - no table yet: nothing loaded, nothing to flag
        return set()
    return {row[0] for row in rows or []}
