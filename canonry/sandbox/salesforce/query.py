"""Salesforce sandbox reads: `query` / `queryAll` (SOQL over the lazily generated records, batches and query
locators), `sobjects` describes, `limits`, getUpdated / getDeleted."""


from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from canonry.sandbox.collection import BASE_EPOCH, Entry
from canonry.sandbox.engine import utcnow
from canonry.sandbox.kit import guarded
from canonry.sandbox.salesforce.objects import (
    FIELDS,
    KEY_PREFIXES,
    LABELS,
    child_relationships,
    make_id,
    sf_datetime,
)
from canonry.sandbox.salesforce.soql import Query, SoqlError, parse, parse_datetime
from canonry.sandbox.salesforce.soql_eval import matches, project, sort_key

API_VERSION = "62.0"
BATCH_MAX, BATCH_MIN = 2000, 200
DELETED_WINDOW_DAYS, UPDATED_WINDOW_DAYS = 15, 30
# Salesforce refuses a request URI over its length limit with 414 (reference: providers.md, status codes); a
# long `WHERE Email IN (...)` is what hits it. 16,384 bytes is the commonly cited limit [unverified].
MAX_URI_BYTES = 16_384

@dataclass
class QueryCursor:
    query: Query
    rows: Iterator[dict]
    total: int
    batch: int
    version: str
    served: int = 0
    pending: dict | None = None
    last: tuple[int, dict] | None = None
    lock: threading.Lock = None  # type: ignore[assignment]


class SalesforceQuery:
    """The read endpoints of the Salesforce simulator."""

    # -- query --------------------------------------------------------------------------------
    @guarded
    async def query(self, request: Request, headers: dict[str, str]) -> Response:
        return self._run_query(request, all_rows=False)

    @guarded
    async def query_all(self, request: Request, headers: dict[str, str]) -> Response:
        return self._run_query(request, all_rows=True)

    def _run_query(self, request: Request, all_rows: bool) -> Response:
        uri = request.url.path + ("?" + request.url.query if request.url.query else "")
        if len(uri.encode()) > MAX_URI_BYTES:
            return self.error(414, "URI_TOO_LONG", f"The request URI is longer than {MAX_URI_BYTES} bytes")
        text = request.query_params.get("q")
        if not text:
            return self.error(400, "MALFORMED_QUERY", "A query string must be provided with the q parameter")
        try:
            query = parse(text, self.schema)
        except SoqlError as exc:
            return self.error(400, exc.code, exc.message)
        batch = BATCH_MAX
        for option in request.headers.get("sforce-query-options", "").split(","):
            key, _, value = option.strip().partition("=")
            if key.strip().lower() == "batchsize" and value.strip().isdigit():
                batch = max(BATCH_MIN, min(BATCH_MAX, int(value)))
        rows, total = self._plan(query, all_rows)
        if query.count_only:
            return self.ok({"totalSize": total, "done": True, "records": []})
        version = request.path_params["version"]
        cursor = QueryCursor(query, rows, total, batch, version, lock=threading.Lock())
        locator = make_id("OpportunityStage", next(self.cursor_serial)).replace("01J", "01g", 1)
        self.cursors[locator] = cursor
        return self.ok(self._serve(locator, cursor, 0))

    @guarded
    async def query_more(self, request: Request, headers: dict[str, str]) -> Response:
        locator, _, offset = request.path_params["locator"].rpartition("-")
        cursor = self.cursors.get(locator)
        if cursor is None or not offset.isdigit():
            return self.error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        offset_n = int(offset)
        with cursor.lock:
            if cursor.last is not None and cursor.last[0] == offset_n:
                return self.ok(cursor.last[1])       # the same batch again (a client retry)
            if offset_n != cursor.served:
                return self.error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            return self.ok(self._serve(locator, cursor, offset_n))

    def _serve(self, locator: str, cursor: QueryCursor, offset: int) -> dict:
        records = []
        if cursor.pending is not None:
            records.append(cursor.pending)
            cursor.pending = None
        records += list(itertools.islice(cursor.rows, cursor.batch - len(records)))
        cursor.pending = next(cursor.rows, None)
        cursor.served = offset + len(records)
        body: dict = {"totalSize": cursor.total, "done": cursor.pending is None, "records": records}
        if cursor.pending is not None:
            body["nextRecordsUrl"] = f"/services/data/v{cursor.version}/query/{locator}-{cursor.served}"
        else:
            self.cursors.pop(locator, None)
            self.cursors[locator] = cursor           # kept for a retry of the last batch
        cursor.last = (offset, body)
        return body

    def _candidates(self, query: Query, all_rows: bool) -> tuple[Iterator[tuple[int, Entry]], bool]:
        """(index, entry) candidates and whether they already come in the requested order."""
        name = query.object_name
        collection = self.collections[name]
        order = [(o.path.info.name, o.descending) for o in query.order_by if not o.path.hops]
        plain = len(order) == len(query.order_by)
        by_modstamp = plain and bool(order) and order[0] in (("SystemModstamp", False), ("LastModifiedDate", False)) \
            and (len(order) == 1 or order[1:] == [("Id", False)])
        by_id = plain and (not order or order == [("Id", False)])
        bound = query.modstamp_lower_bound()
        purged = (lambda i: self.is_purged(name, i)) if name in self.purged_before else (lambda i: False)
        if by_modstamp or (bound is not None and not order):
            source = collection.iter_modified_since(bound or BASE_EPOCH - timedelta(days=1), include_deleted=all_rows)
            return ((i, e) for i, e in source if not purged(i)), True
        source = ((i, collection.get(i)) for i in range(collection.size))
        source = ((i, e) for i, e in source if (all_rows or e.deleted_at is None) and not purged(i))
        return source, by_id

    def _plan(self, query: Query, all_rows: bool) -> tuple[Iterator[dict], int]:
        name = query.object_name
        resolve = self.resolve

        def matching() -> Iterator[dict]:
            candidates, _ = self._candidates(query, all_rows)
            for index, entry in candidates:
                record = self.render(name, index, entry)
                if matches(query.where, record, resolve):
                    yield record

        _, ordered = self._candidates(query, all_rows)
        total = sum(1 for _ in matching())
        if ordered:
            records: Iterator[dict] = matching()
        else:
            key = sort_key(query.order_by, resolve)
            records = iter(sorted(matching(), key=lambda r: (key(r), r["Id"])))
        if query.offset:
            records = itertools.islice(records, query.offset, None)
        if query.limit is not None:
            records = itertools.islice(records, query.limit)
        total = max(0, total - query.offset)
        total = min(total, query.limit) if query.limit is not None else total
        return (project(r, query, resolve, self.attributes) for r in records), total

    # -- describe, limits ---------------------------------------------------------------------
    @guarded
    async def describe_global(self, request: Request, headers: dict[str, str]) -> Response:
        return self.ok({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [
            self._object_summary(name) for name in FIELDS]})

    def _object_summary(self, name: str) -> dict:
        base = f"/services/data/v{API_VERSION}/sobjects/{name}"
        system = name == "OpportunityStage"
        return {"name": name, "label": LABELS[name][0], "labelPlural": LABELS[name][1],
                "keyPrefix": KEY_PREFIXES[name], "custom": False, "queryable": True, "retrieveable": True,
                "searchable": not system, "createable": not system, "updateable": not system,
                "deletable": not system, "replicateable": True, "triggerable": not system,
                "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}}

    @guarded
    async def describe(self, request: Request, headers: dict[str, str]) -> Response:
        name = self._object(request.path_params["sobject"])
        if name is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        return self.ok({**self._object_summary(name), "fields": [f.describe() for f in self.fields(name)],
                        "childRelationships": child_relationships(name), "recordTypeInfos": []})

    @guarded
    async def limits(self, request: Request, headers: dict[str, str]) -> Response:
        return self.ok({"DailyApiRequests": {"Max": self.daily_limit,
                                             "Remaining": max(0, self.daily_limit - self.api_used)}})

    @guarded
    async def record_count(self, request: Request, headers: dict[str, str]) -> Response:
        """`GET /limits/recordCount?sObjects=A,B`: approximate record counts (here exact: alive records);
        without `sObjects`, every object. Unknown names are left out, as Salesforce does."""
        wanted = [n for n in request.query_params.get("sObjects", "").split(",") if n] or list(FIELDS)
        names = [name for name in (self._object(n) for n in wanted) if name is not None]
        return self.ok({"sObjects": [{"count": self.collections[name].count_alive(), "name": name}
                                     for name in dict.fromkeys(names)]})

    # -- getUpdated / getDeleted -------------------------------------------------------------
    def _window(self, request: Request, days: int) -> tuple[datetime, datetime] | Response:
        try:
            start = parse_datetime(request.query_params["start"])
            end = parse_datetime(request.query_params["end"])
        except (KeyError, ValueError):
            return self.error(400, "MALFORMED_QUERY", "start and end must be ISO-8601 date-times")
        now = utcnow()
        if start >= end:
            return self.error(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate")
        if days == UPDATED_WINDOW_DAYS and start < now - timedelta(days=days):
            return self.error(400, "INVALID_REPLICATION_DATE",
                              f"startDate cannot be more than {days} days ago")
        return start, min(end, now)

    @guarded
    async def get_updated(self, request: Request, headers: dict[str, str]) -> Response:
        name = self._object(request.path_params["sobject"])
        if name is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        window = self._window(request, UPDATED_WINDOW_DAYS)
        if isinstance(window, Response):
            return window
        start, end = window
        covered = end.replace(second=0, microsecond=0)
        collection = self.collections[name]
        ids = [collection.id_of(i) for i, e in collection.iter_modified_since(start)
               if e.modified_at.replace(microsecond=0) < covered]
        return self.ok({"ids": ids, "latestDateCovered": sf_datetime(covered)})

    @guarded
    async def get_deleted(self, request: Request, headers: dict[str, str]) -> Response:
        name = self._object(request.path_params["sobject"])
        if name is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        window = self._window(request, DELETED_WINDOW_DAYS)
        if isinstance(window, Response):
            return window
        start, end = window
        earliest = max(utcnow() - timedelta(days=DELETED_WINDOW_DAYS), self.purged_before.get(name, BASE_EPOCH))
        covered = end.replace(second=0, microsecond=0)
        collection = self.collections[name]
        deleted = [{"id": collection.id_of(i), "deletedDate": sf_datetime(e.deleted_at)}
                   for i, e in collection.iter_deleted()
                   if not self.is_purged(name, i) and max(start, earliest) <= e.deleted_at < covered]
        deleted.sort(key=lambda d: d["deletedDate"])
        return self.ok({"deletedRecords": deleted, "earliestDateAvailable": sf_datetime(earliest),
                        "latestDateCovered": sf_datetime(covered)})
