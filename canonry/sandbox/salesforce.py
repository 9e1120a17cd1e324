"""Salesforce REST API simulator (API notes: sources/salesforce/README.md).

Served under `/services/data/v<version>/` (any version; the connector pins v62.0):
* `query` / `queryAll` executing a real SOQL subset (`salesforce_soql.py`) over lazily generated records,
  `{totalSize, done, nextRecordsUrl, records[attributes]}` in batches of up to 2,000
  (`Sforce-Query-Options: batchSize=N`, 200–2,000), locators `/services/data/v62.0/query/01g…-2000`;
  `WHERE SystemModstamp >= … ORDER BY SystemModstamp` walks the collection's modification order instead
  of scanning, so a million-record org costs no memory;
* `sobjects`, `sobjects/<Object>/describe`, `…/updated` and `…/deleted` (getUpdated/getDeleted: 30- and
  15-day windows, `earliestDateAvailable`, `latestDateCovered`), single-record GET/POST/PATCH/DELETE and
  upsert by external id, sObject Collections (`salesforce_writes.py`), `limits`;
* the daily API budget (`Sforce-Limit-Info: api-usage=N/M`, 403 `REQUEST_LIMIT_EXCEEDED` "TotalRequests Limit
  exceeded." when spent), 401 `INVALID_SESSION_ID`, errors as `[{message, errorCode, fields}]`;
* OAuth 2.0 web-server flow at `/services/oauth2/{authorize,token,revoke}`: code + PKCE, refresh tokens
  only with the `refresh_token`/`offline_access` scope, `instance_url`, `id`, `issued_at`, `signature`,
  no `expires_in` (sessions time out after `session_timeout` seconds); optional refresh-token rotation.
Sandbox-only controls under `/_sandbox/salesforce/`: `limits` (set the daily limit, reset the day),
`purge` (empty the recycle bin: deleted records vanish and `earliestDateAvailable` moves), `write_failures`,
`writes` (the write log), `expire_tokens`.
Outbound Messages (SOAP, this org's id, retried until acknowledged) to `state.webhook_url` on creates and
updates through the control endpoint: `canonry/sandbox/webhooks.py`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from canonry.sandbox.collection import BASE_EPOCH, Collection, Entry
from canonry.sandbox.engine import SandboxState, bearer_token, json_response, utcnow
from canonry.sandbox.oauth_server import OAuthClient, OAuthError, OAuthServer
from canonry.sandbox.salesforce_objects import (
    FIELDS,
    KEY_PREFIXES,
    LABELS,
    ORG_ID,
    STAGES,
    Generator,
    child_relationships,
    make_id,
    object_of_id,
    parse_id,
    sf_datetime,
)
from canonry.sandbox.salesforce_soql import (
    Query,
    Schema,
    SoqlError,
    matches,
    parse,
    parse_datetime,
    project,
    sort_key,
)
from canonry.sandbox.salesforce_writes import FailureRule, WriteError, WriteMixin
from canonry.sandbox.webhooks import SALESFORCE_ATTEMPTS, WebhookSender, salesforce_outbound

API_VERSION = "62.0"
BATCH_MAX, BATCH_MIN = 2000, 200
DELETED_WINDOW_DAYS, UPDATED_WINDOW_DAYS = 15, 30
DEFAULT_CLIENT_ID = "canonry-salesforce-consumer-key"
DEFAULT_CLIENT_SECRET = "sandbox-salesforce-consumer-secret"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"
STAGE_BY_NAME = {s[0]: s for s in STAGES}
USER_UPDATE_FIELD = {"Account": "Description", "Contact": "Title", "Lead": "Title", "Opportunity": "Description",
                     "User": "Title", "Task": "Description", "Event": "Description", "Note": "Body",
                     "OpportunityStage": "Description"}


@dataclass
class _Cursor:
    query: Query
    rows: Iterator[dict]
    total: int
    batch: int
    version: str
    served: int = 0
    pending: dict | None = None
    last: tuple[int, dict] | None = None
    lock: threading.Lock = None  # type: ignore[assignment]


class SalesforceSimulator(WriteMixin):
    slug = "salesforce"

    def __init__(self, state: SandboxState, daily_limit: int = 100_000, session_timeout: int = 7200,
                 rotate_refresh_tokens: bool = False,
                 redirect_uris: tuple[str, ...] = (DEFAULT_REDIRECT_URI,)) -> None:
        self.state = state
        self.gen = Generator(state.seed, state.scale)
        self.collections: dict[str, Collection] = {
            name: Collection(name, size, self.gen.factory(name), lambda i, n=name: make_id(n, i),
                             lambda rid, n=name: parse_id(n, rid))
            for name, size in self.gen.sizes().items()
        }
        self.schema = Schema({name: {f.name.lower(): f.info() for f in fields} for name, fields in FIELDS.items()})
        self.daily_limit = daily_limit
        self.api_used = 0
        self.usage_lock = threading.Lock()
        self.cursors: dict[str, _Cursor] = {}
        self.cursor_serial = itertools.count(1)
        self.purged_before: dict[str, datetime] = {}
        self.write_failures: list[FailureRule] = []
        self.writes: list[dict] = []
        self.oauth = OAuthServer(state, access_ttl=session_timeout, token_prefix="00D5g000004Canon!AQ",
                                 rotate_refresh_tokens=rotate_refresh_tokens)
        self.oauth.register(OAuthClient(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, tuple(redirect_uris),
                                        ("api", "refresh_token")))
        self.access_by_refresh: dict[str, set[str]] = {}
        # Outbound Messages to state.webhook_url on creates and updates (not deletes, as in Salesforce).
        self.webhooks = WebhookSender("salesforce", SALESFORCE_ATTEMPTS)

    # -- records ------------------------------------------------------------------------------
    def render(self, name: str, index: int, entry: Entry) -> dict:
        record_id = self.collections[name].id_of(index)
        body: dict = {"attributes": self.attributes(name, {"Id": record_id}), "Id": record_id}
        body.update(entry.record)
        modstamp = sf_datetime(entry.modified_at)
        creator = make_id("User", index % self.gen.users)
        body.update(IsDeleted=entry.deleted_at is not None, CreatedDate=sf_datetime(entry.created_at),
                    CreatedById=creator, LastModifiedDate=modstamp, LastModifiedById=creator,
                    SystemModstamp=modstamp)
        if name in ("Contact", "Lead", "User"):
            body["Name"] = " ".join(p for p in (body.get("FirstName"), body.get("LastName")) if p)
        if name == "Opportunity":
            stage = STAGE_BY_NAME.get(body.get("StageName"))
            body["IsClosed"], body["IsWon"] = (stage[3], stage[4]) if stage else (False, False)
        if name in ("Task", "Event"):
            body["AccountId"] = self._activity_account(body)
        if name == "Task":
            body["IsClosed"] = body.get("Status") == "Completed"
            body["CompletedDateTime"] = modstamp if body["IsClosed"] else None
        ordered = {"attributes": body.pop("attributes")}
        for f in FIELDS[name]:
            ordered[f.name] = body.get(f.name)
        return ordered

    def _activity_account(self, body: dict) -> str | None:
        what = body.get("WhatId")
        kind = object_of_id(what)
        if kind == "Account":
            return what
        if kind == "Opportunity":
            record = self._raw_record("Opportunity", what)
            return record.get("AccountId") if record else None
        who = body.get("WhoId")
        if object_of_id(who) == "Contact":
            record = self._raw_record("Contact", who)
            return record.get("AccountId") if record else None
        return None

    def _raw_record(self, name: str, record_id: str) -> dict | None:
        collection = self.collections[name]
        index = collection.index_of(record_id)
        return collection.get(index).record if index is not None else None

    def attributes(self, name: str, record: dict) -> dict:
        return {"type": name, "url": f"/services/data/v{API_VERSION}/sobjects/{name}/{record.get('Id')}"}

    def is_purged(self, name: str, index: int) -> bool:
        cutoff = self.purged_before.get(name)
        if cutoff is None:
            return False
        entry = self.collections[name].changes.get(index)
        return entry is not None and entry.deleted_at is not None and entry.deleted_at < cutoff

    def resolve(self, record_id: str | None) -> dict | None:
        """A referenced record (alive only), for relationship paths in SOQL."""
        name = object_of_id(record_id)
        if name is None:
            return None
        collection = self.collections[name]
        index = collection.index_of(record_id)
        if index is None or not collection.is_alive(index):
            return None
        return self.render(name, index, collection.get(index))

    # -- errors and guard ---------------------------------------------------------------------
    def limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.daily_limit}"}

    def error(self, status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
        item: dict = {"message": message, "errorCode": code}
        if fields is not None:
            item["fields"] = fields
        return json_response([item], status, headers=self.limit_header())

    def error_response(self, status: int, message: str, kind: str) -> Response:
        if kind == "rate_limited":
            # Salesforce has no 429: the concurrent-request limit answers 403 REQUEST_LIMIT_EXCEEDED.
            return self.error(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
        if kind == "unauthorized":
            return self.error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if kind == "server":
            return self.error(status, "SERVER_UNAVAILABLE", "Server temporarily unavailable: " + message)
        if kind == "not_found":
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        if kind == "method_not_allowed":
            return self.error(405, "METHOD_NOT_ALLOWED", message)
        return self.error(status, "UNKNOWN_EXCEPTION", message)

    def guard(self, request: Request) -> Response | None:
        if self.oauth.token_state(bearer_token(request)) != "valid":
            return self.error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        with self.usage_lock:
            if self.api_used >= self.daily_limit:
                return self.error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self.api_used += 1
        return None

    def ok(self, body, status: int = 200) -> Response:
        return json_response(body, status, headers=self.limit_header())

    def _object(self, written: str) -> str | None:
        return self.schema.name(written)

    # -- routes -------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        d = "/services/data/v{version}"
        api = [
            ("", self.versions_root, ["GET"]),
            ("/query", self.query, ["GET"]), ("/query/", self.query, ["GET"]),
            ("/queryAll", self.query_all, ["GET"]), ("/queryAll/", self.query_all, ["GET"]),
            ("/query/{locator}", self.query_more, ["GET"]), ("/queryAll/{locator}", self.query_more, ["GET"]),
            ("/limits", self.limits, ["GET"]), ("/limits/", self.limits, ["GET"]),
            ("/limits/recordCount", self.record_count, ["GET"]),
            ("/sobjects", self.describe_global, ["GET"]), ("/sobjects/", self.describe_global, ["GET"]),
            ("/sobjects/{sobject}/describe", self.describe, ["GET"]),
            ("/sobjects/{sobject}/describe/", self.describe, ["GET"]),
            ("/sobjects/{sobject}/updated", self.get_updated, ["GET"]),
            ("/sobjects/{sobject}/updated/", self.get_updated, ["GET"]),
            ("/sobjects/{sobject}/deleted", self.get_deleted, ["GET"]),
            ("/sobjects/{sobject}/deleted/", self.get_deleted, ["GET"]),
            ("/sobjects/{sobject}", self.create, ["POST"]), ("/sobjects/{sobject}/", self.create, ["POST"]),
            ("/sobjects/{sobject}/{record_id}", self.record, ["GET", "PATCH", "DELETE"]),
            ("/sobjects/{sobject}/{ext_field}/{value}", self.upsert, ["PATCH", "GET"]),
            ("/composite/sobjects", self.composite, ["POST", "PATCH", "DELETE"]),
            ("/composite/sobjects/{sobject}/{ext_field}", self.composite_upsert, ["PATCH"]),
        ]
        routes = [Route(d + path, handler, methods=methods) for path, handler, methods in api]
        routes += [
            Route("/services/oauth2/authorize", self.authorize, methods=["GET"]),
            Route("/services/oauth2/token", self.token, methods=["POST"]),
            Route("/services/oauth2/revoke", self.revoke, methods=["GET", "POST"]),
            Route("/_sandbox/salesforce/limits", self.control_limits, methods=["GET", "POST"]),
            Route("/_sandbox/salesforce/purge", self.control_purge, methods=["POST"]),
            Route("/_sandbox/salesforce/write_failures", self.control_write_failures, methods=["POST"]),
            Route("/_sandbox/salesforce/writes", self.control_writes, methods=["GET", "DELETE"]),
            Route("/_sandbox/salesforce/expire_tokens", self.control_expire_tokens, methods=["POST"]),
        ]
        return routes

    async def versions_root(self, request: Request) -> Response:
        error = self.guard(request)
        if error:
            return error
        base = f"/services/data/v{request.path_params['version']}"
        return self.ok({"sobjects": f"{base}/sobjects", "query": f"{base}/query", "queryAll": f"{base}/queryAll",
                        "limits": f"{base}/limits", "composite": f"{base}/composite"})

    # -- query --------------------------------------------------------------------------------
    async def query(self, request: Request) -> Response:
        return await self._run_query(request, all_rows=False)

    async def query_all(self, request: Request) -> Response:
        return await self._run_query(request, all_rows=True)

    async def _run_query(self, request: Request, all_rows: bool) -> Response:
        error = self.guard(request)
        if error:
            return error
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
        cursor = _Cursor(query, rows, total, batch, version, lock=threading.Lock())
        locator = make_id("OpportunityStage", next(self.cursor_serial)).replace("01J", "01g", 1)
        self.cursors[locator] = cursor
        return self.ok(self._serve(locator, cursor, 0))

    async def query_more(self, request: Request) -> Response:
        error = self.guard(request)
        if error:
            return error
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

    def _serve(self, locator: str, cursor: _Cursor, offset: int) -> dict:
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
    async def describe_global(self, request: Request) -> Response:
        error = self.guard(request)
        if error:
            return error
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

    async def describe(self, request: Request) -> Response:
        error = self.guard(request)
        if error:
            return error
        name = self._object(request.path_params["sobject"])
        if name is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        return self.ok({**self._object_summary(name), "fields": [f.describe() for f in FIELDS[name]],
                        "childRelationships": child_relationships(name), "recordTypeInfos": []})

    async def limits(self, request: Request) -> Response:
        error = self.guard(request)
        if error:
            return error
        return self.ok({"DailyApiRequests": {"Max": self.daily_limit,
                                             "Remaining": max(0, self.daily_limit - self.api_used)}})

    async def record_count(self, request: Request) -> Response:
        """`GET /limits/recordCount?sObjects=A,B`: approximate record counts (here exact: alive records);
        without `sObjects`, every object. Unknown names are left out, as Salesforce does."""
        error = self.guard(request)
        if error:
            return error
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

    async def get_updated(self, request: Request) -> Response:
        error = self.guard(request)
        if error:
            return error
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

    async def get_deleted(self, request: Request) -> Response:
        error = self.guard(request)
        if error:
            return error
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

    # -- single-record reads and writes -------------------------------------------------------
    def _write_error(self, exc: WriteError) -> Response:
        return self.error(exc.status, exc.code, exc.message, exc.fields)

    async def record(self, request: Request) -> Response:
        error = self.guard(request)
        if error:
            return error
        name = self._object(request.path_params["sobject"])
        if name is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        record_id = request.path_params["record_id"]
        try:
            if request.method == "GET":
                index = self._alive_index(name, record_id)
                body = self.render(name, index, self.collections[name].get(index))
                wanted = [f for f in request.query_params.get("fields", "").split(",") if f]
                if wanted:
                    lower = {k.lower(): k for k in body}
                    missing = [f for f in wanted if f.lower() not in lower]
                    if missing:
                        return self.error(400, "INVALID_FIELD", f"No such column '{missing[0]}' on sobject of "
                                          f"type {name}")
                    body = {"attributes": body["attributes"], **{lower[f.lower()]: body[lower[f.lower()]]
                                                                 for f in wanted}}
                return self.ok(body)
            if request.method == "DELETE":
                self.delete_record(name, record_id)
                self._log("delete", name, record_id, True, {})
                return Response(status_code=204, headers=self.limit_header())
            values = await _json(request)
            if not isinstance(values, dict):
                return self.error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
            self.update_record(name, record_id, values)
            self._log("update", name, record_id, True, values)
            return Response(status_code=204, headers=self.limit_header())
        except WriteError as exc:
            if request.method != "GET":
                self._log(request.method.lower(), name, record_id, False, {}, exc)
            return self._write_error(exc)

    async def create(self, request: Request) -> Response:
        error = self.guard(request)
        if error:
            return error
        name = self._object(request.path_params["sobject"])
        if name is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        values = await _json(request)
        if not isinstance(values, dict):
            return self.error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        try:
            record_id = self.create_record(name, values)
        except WriteError as exc:
            self._log("create", name, None, False, values, exc)
            return self._write_error(exc)
        self._log("create", name, record_id, True, values)
        return self.ok({"id": record_id, "success": True, "errors": []}, 201)

    async def upsert(self, request: Request) -> Response:
        error = self.guard(request)
        if error:
            return error
        name = self._object(request.path_params["sobject"])
        if name is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        value = request.path_params["value"]
        try:
            ext_field = self.external_field(name, request.path_params["ext_field"])
            if request.method == "GET":
                found = self.find_by_external(name, ext_field, value)
                if not found:
                    raise WriteError("NOT_FOUND", "The requested resource does not exist", status=404)
                if len(found) > 1:
                    return self.ok([self.attributes(name, {"Id": self.collections[name].id_of(i)})["url"]
                                    for i in found], 300)
                return self.ok(self.render(name, found[0], self.collections[name].get(found[0])))
            values = await _json(request)
            if not isinstance(values, dict):
                return self.error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
            update_only = request.query_params.get("updateOnly", "false").lower() == "true"
            record_id, created = self.upsert_record(name, ext_field, value, values, update_only)
        except WriteError as exc:
            self._log("upsert", name, None, False, {}, exc, (request.path_params["ext_field"], value))
            if exc.status == 300:
                found = self.find_by_external(name, request.path_params["ext_field"], value)
                return self.ok([self.attributes(name, {"Id": self.collections[name].id_of(i)})["url"]
                                for i in found], 300)
            return self._write_error(exc)
        self._log("upsert", name, record_id, True, values, external=(ext_field, value))
        return self.ok({"id": record_id, "success": True, "errors": [], "created": created}, 201 if created else 200)

    async def composite(self, request: Request) -> Response:
        error = self.guard(request)
        if error:
            return error
        try:
            if request.method == "DELETE":
                ids = [i for i in request.query_params.get("ids", "").split(",") if i]
                all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"
                return self.ok(self.collection_write("delete", ids, all_or_none))
            body = await _json(request)
            if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                return self.error(400, "JSON_PARSER_ERROR", "The request body must have a records array")
            operation = "create" if request.method == "POST" else "update"
            return self.ok(self.collection_write(operation, body["records"], bool(body.get("allOrNone"))))
        except WriteError as exc:
            return self._write_error(exc)

    async def composite_upsert(self, request: Request) -> Response:
        error = self.guard(request)
        if error:
            return error
        name = self._object(request.path_params["sobject"])
        if name is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            ext_field = self.external_field(name, request.path_params["ext_field"])
            body = await _json(request)
            if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                return self.error(400, "JSON_PARSER_ERROR", "The request body must have a records array")
            return self.ok(self.collection_write("upsert", body["records"], bool(body.get("allOrNone")),
                                                 name, ext_field))
        except WriteError as exc:
            return self._write_error(exc)

    # -- OAuth --------------------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("response_type") != "code":
            return json_response({"error": "unsupported_response_type", "error_description": "response type not "
                                  "supported"}, 400)
        try:
            code = self.oauth.authorize(q.get("client_id", ""), q.get("redirect_uri", ""),
                                        q.get("scope", "api refresh_token"), q.get("code_challenge"),
                                        q.get("code_challenge_method"))
        except OAuthError as exc:
            return json_response({"error": exc.error, "error_description": exc.description}, 400)
        params = {"code": code}
        if q.get("state") is not None:
            params["state"] = q["state"]
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode(params)}", status_code=302)

    async def token(self, request: Request) -> Response:
        form = await _form(request)
        basic = _basic_auth(request)
        try:
            grant = form.get("grant_type")
            if grant == "authorization_code":
                issued = self.oauth.exchange_code(form, basic)
            elif grant == "refresh_token":
                issued = self.oauth.refresh(form, basic)
            else:
                raise OAuthError("unsupported_grant_type", "grant type not supported")
        except OAuthError as exc:
            description = {"invalid_grant": "expired access/refresh token" if form.get("grant_type") ==
                           "refresh_token" else "authentication failure",
                           "invalid_client": "invalid client credentials"}.get(exc.error, exc.description)
            return json_response({"error": exc.error, "error_description": description}, 400)
        wants_refresh = bool({"refresh_token", "offline_access", "full"} & set(issued.scopes))
        refresh = issued.refresh_token if wants_refresh else None
        if not wants_refresh and issued.refresh_token:
            self.oauth.refresh_tokens.pop(issued.refresh_token, None)
        presented = form.get("refresh_token")
        family = self.access_by_refresh.pop(presented, set()) if presented and refresh != presented else \
            self.access_by_refresh.get(presented or "", set())
        if refresh:
            family = set(family) | {issued.access_token}
            self.access_by_refresh[refresh] = family
        client_secret = (basic or (None, form.get("client_secret")))[1] or ""
        issued_at = str(int(time.time() * 1000))
        user_id = make_id("User", 0)
        identity = f"{self.state.base_url}/id/{ORG_ID}/{user_id}"
        signature = base64.b64encode(hmac.new(client_secret.encode(), (identity + issued_at).encode(),
                                              hashlib.sha256).digest()).decode()
        body = {"access_token": issued.access_token, "signature": signature, "scope": " ".join(issued.scopes),
                "instance_url": self.state.base_url, "id": identity, "token_type": "Bearer",
                "issued_at": issued_at}
        if refresh and (grant == "authorization_code" or self.oauth.rotate_refresh_tokens):
            body["refresh_token"] = refresh
        return json_response(body)

    async def revoke(self, request: Request) -> Response:
        token = request.query_params.get("token") or ((await _form(request)).get("token", "")
                                                       if request.method == "POST" else "")
        known = self.oauth.revoke(token)
        for access in self.access_by_refresh.pop(token, set()):   # a refresh token takes its sessions along
            self.oauth.revoke(access)
        if not known:
            return json_response({"error": "invalid_token", "error_description": "the token is invalid"}, 400)
        return Response(status_code=200)

    # -- sandbox controls ---------------------------------------------------------------------
    async def control_limits(self, request: Request) -> Response:
        if request.method == "POST":
            body = await _json(request) or {}
            with self.usage_lock:
                if "daily_limit" in body:
                    self.daily_limit = int(body["daily_limit"])
                if body.get("reset"):
                    self.api_used = 0
                if "used" in body:
                    self.api_used = int(body["used"])
        return json_response({"daily_limit": self.daily_limit, "used": self.api_used})

    async def control_purge(self, request: Request) -> Response:
        body = await _json(request) or {}
        now = utcnow()
        names = [body["object"]] if body.get("object") else list(self.collections)
        for name in names:
            self.purged_before[name] = now
        return json_response({"purged_before": sf_datetime(now), "objects": names})

    async def control_write_failures(self, request: Request) -> Response:
        body = await _json(request) or {}
        self.write_failures = [FailureRule(**rule) for rule in body.get("rules", [])]
        return json_response({"rules": [asdict(r) for r in self.write_failures]})

    async def control_writes(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.writes.clear()
        return json_response({"writes": list(self.writes)})

    async def control_expire_tokens(self, request: Request) -> Response:
        self.oauth.expire_all_access_tokens()
        return json_response({"expired": True})

    # -- engine control: mutate / truth -------------------------------------------------------
    def mutate(self, object_name: str, action: str, count: int, rng: random.Random,
               ids: list[str] | None) -> list[str]:
        name = self._object(object_name)
        if name is None:
            raise KeyError(object_name)
        collection = self.collections[name]
        if action == "create":
            factory = collection.factory
            indexes = [collection.create(factory, utcnow()) for _ in range(count)]
            self._outbound(name, indexes)
            return [collection.id_of(i) for i in indexes]
        indexes = collection.targets(action, count, rng, ids)
        done = []
        for index in indexes:
            now = utcnow()
            if action == "update":
                field_name = USER_UPDATE_FIELD[name]
                collection.update(index, lambda rec, t=now, f=field_name: {**rec, f: f"updated {t:%H%M%S%f}"}, now)
            elif action == "delete":
                collection.delete(index, now)
            elif action == "restore":
                collection.restore(index, now)
            done.append(collection.id_of(index))
        if action != "delete":
            self._outbound(name, indexes)
        return done

    def _outbound(self, name: str, indexes: list[int]) -> None:
        if self.state.webhook_url and indexes:
            collection = self.collections[name]
            salesforce_outbound(self.webhooks, self.state.webhook_url, ORG_ID, name,
                                [self.render(name, i, collection.get(i)) for i in indexes])

    def truth(self, object_name: str) -> list[dict]:
        name = self._object(object_name)
        if name is None:
            raise KeyError(object_name)
        collection = self.collections[name]
        out = []
        for index in range(collection.size):
            entry = collection.get(index)
            out.append({"id": collection.id_of(index), "deleted": entry.deleted_at is not None,
                        "updated_at": sf_datetime(entry.modified_at), "record": self.render(name, index, entry)})
        return out


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (parsed here: starlette's form parser needs python-multipart)."""
    return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))


async def _json(request: Request):
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _basic_auth(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    return user, password

