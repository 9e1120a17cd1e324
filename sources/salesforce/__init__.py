"""Salesforce source: Account, Contact, Lead, Opportunity, OpportunityStage, User, Task, Event, Note into
`raw_salesforce`.

Each object is one SOQL query built from its declared field list (settings.py), ordered by
`SystemModstamp, Id`, 2,000 records per batch. The first run reads everything with `query`; later runs read
`queryAll ... WHERE SystemModstamp >= <cursor - lookback>` (changes and soft deletes with their full bodies),
dropping versions already loaded at the boundary (`BoundaryDedup`). Deletes purged from the recycle bin
come from getDeleted as tombstones; when getDeleted's `earliestDateAvailable` is later than the last point
we covered (the 15-day window lapsed), a key scan (`SELECT Id`) flags every record we hold that is gone.

The daily API allocation: `REQUEST_LIMIT_EXCEEDED` ("TotalRequests Limit exceeded.") is `quota_exhausted`;
it, and `rate_limited` answers that outlast the retries (a 429 storm), stop the run the same way. Every
object is a resumable pass (`canonry.checkpoints`) checkpointed at the modstamp of its last loaded batch
(plus the ids loaded at that stamp): a stop or a crash keeps the pages loaded so far, the run is recorded
`partial` (or `killed`), and the next run resumes exactly there: no gaps, no duplicates.

Custom fields (opt-in object `custom_fields`): Account, Contact and Opportunity are described once per run,
their `__c` fields selected with the declared ones, and the definitions written to
`raw_salesforce.custom_fields` when new or changed (sources/salesforce/README.md, "Custom fields").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from canonry.checkpoints import ResumablePass
from canonry.errors import CanonryError, ErrorClass
from canonry.raw import RAW_COLUMNS_HINT, TIMESTAMP
from canonry.runtime import ConnectionRuntime, until_stopped

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
        if name == "custom_fields":
            yield dlt.resource(_custom_fields(runtime, catalog), name=name, write_disposition="append",
                               columns=RAW_COLUMNS_HINT)
        else:
            # A spent daily budget, or a 429 storm longer than the retries, ends the run cleanly at the
            # pass's last checkpoint (`until_stopped`); the next run continues from there.
            yield dlt.resource(until_stopped(runtime, _sobject(runtime, SOBJECTS[name], catalog)), name=name,
                               write_disposition="append", columns=RAW_COLUMNS_HINT)


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


def _sobject(runtime: ConnectionRuntime, spec: SObject, catalog: CustomFieldCatalog | None = None) -> Iterator:
    """Resumable (SPEC.resumable): a pass checkpointed at the modstamp of its last loaded batch plus the ids
    loaded at that stamp (`canonry.checkpoints`). The next checkpoint queries again from that stamp (the
    query is ordered by `SystemModstamp, Id`) rather than reusing a query locator, which Salesforce expires:
    a resume hours after a crash still works, and a record changed meanwhile comes back with its new stamp.
    The cursor moves and deletes are read when the pass ends."""
    if runtime.interrupted is not None:   # the daily budget is spent: spend no more calls this run
        return
    state = dlt.current.resource_state()
    client = SalesforceClient(runtime)

    def begin(started: datetime) -> dict:
        cursor = state.get("cursor")
        full = cursor is None or bool(runtime.options.get("full_refresh"))
        lower = None if full else (datetime.fromisoformat(cursor) - runtime.lookback).replace(microsecond=0)
        return {"full": full, "lower": lower.isoformat() if lower else None, "previous": None if full else cursor,
                "newest": lower.isoformat() if lower else None, "deleted_now": dict(state.get("deleted_seen", {}))}

    pass_ = ResumablePass(runtime, spec.resource, state, begin)
    resume, started = pass_.resume, pass_.started
    settle_point = started - timedelta(seconds=SETTLE_SECONDS)
    full = resume["full"]
    lower = datetime.fromisoformat(resume["lower"]) if resume["lower"] else None
    dedup = pass_.dedup(track_from=lower if lower is not None else settle_point - runtime.lookback)
    fields = _fields(client, spec, state, started, catalog)
    for table in pass_.pages(lambda at: _pages_from(client, spec, fields, lower, full, at, runtime.connection_id,
                                                    started)):
        if not table.num_rows:
            continue
        newest = pc.max(table["remote_updated_at"]).as_py()
        if resume["newest"] is None or newest > datetime.fromisoformat(resume["newest"]):
            resume["newest"] = newest.isoformat()
        deleted = table.filter(table["is_deleted"])
        resume["deleted_now"].update(zip(deleted["remote_id"].to_pylist(),
                                         [json.loads(p)["SystemModstamp"] for p in deleted["payload"].to_pylist()],
                                         strict=True))
        pass_.add(dedup.filter(table))
    if pass_.finished:
        previous = datetime.fromisoformat(resume["previous"]) if resume["previous"] else None
        newest = datetime.fromisoformat(resume["newest"]) if resume["newest"] else None
        if spec.deletes:
            for table in _deletes(runtime, client, spec, state, started, previous, resume["deleted_now"]):
                pass_.add(table)
        next_cursor = settle_point if full else max(previous, min(newest, settle_point)) if newest else previous
        dedup.commit(next_cursor - runtime.lookback)
        state["cursor"] = next_cursor.isoformat()
        if full:
            state["deleted_until"] = started.isoformat()
            state["deleted_seen"] = {}
    yield from pass_.commit()


def _pages_from(client: SalesforceClient, spec: SObject, fields: list[str], lower: datetime | None, full: bool,
                position: dict | None, connection_id: str, started: datetime) -> Iterator[tuple[pa.Table, dict | None]]:
    """The pass's batches from `position` ({from: modstamp, tail: ids loaded at it}) or from `lower`, each with
    the position after it (None after the last). SOQL literals have second precision: rows of the first
    batch older than the position, or at it and already loaded, are dropped."""
    since = datetime.fromisoformat(position["from"]) if position else lower
    loaded = pa.array(list(position["tail"]) if position else [], pa.string())
    newest, tail = (position["from"], dict(position["tail"])) if position else (None, {})
    soql = build_soql(spec, fields, since.replace(microsecond=0) if since else None)
    for records, more in client.query_pages(soql, include_deleted=not full):
        table = page_table(records, connection_id, started)
        if position and table.num_rows:
            stamp = pa.scalar(since, TIMESTAMP)
            older = pc.less(table["remote_updated_at"], stamp)
            again = pc.and_(pc.equal(table["remote_updated_at"], stamp), pc.is_in(table["remote_id"], value_set=loaded))
            table = table.filter(pc.invert(pc.or_(older, again)))
        if table.num_rows:
            stamps = table["remote_updated_at"].to_pylist()
            last = stamps[-1]
            if newest is None or last.isoformat() != newest:
                tail, newest = {}, last.isoformat()
            tail.update({rid: newest for rid, ts in zip(table["remote_id"].to_pylist(), stamps, strict=True)
                         if ts == last})
        yield table, ({"from": newest, "tail": tail} if more and newest else None)


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
