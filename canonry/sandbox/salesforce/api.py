"""Salesforce REST API simulator (API notes: sources/salesforce/README.md).

Served under `/services/data/v<version>/` (any version; the connector pins v62.0):
* `query` / `queryAll` executing a real SOQL subset (`soql.py`) over lazily generated records,
  `{totalSize, done, nextRecordsUrl, records[attributes]}` in batches of up to 2,000
  (`Sforce-Query-Options: batchSize=N`, 200–2,000), locators `/services/data/v62.0/query/01g…-2000`;
  `WHERE SystemModstamp >= … ORDER BY SystemModstamp` walks the collection's modification order instead
  of scanning, so a million-record org costs no memory;
* `sobjects`, `sobjects/<Object>/describe`, `…/updated` and `…/deleted` (getUpdated/getDeleted: 30- and
  15-day windows, `earliestDateAvailable`, `latestDateCovered`), single-record GET/POST/PATCH/DELETE and
  upsert by external id, sObject Collections (`writes.py`), `limits`;
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
import threading
import time
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.engine import SandboxState, bearer_token, json_response
from canonry.sandbox.kit import OAuthRoutes, SimulatorBase, guarded, read_form
from canonry.sandbox.oauth_server import OAuthClient, OAuthError, OAuthServer
from canonry.sandbox.salesforce.control import SalesforceControl
from canonry.sandbox.salesforce.custom_fields import CustomFields
from canonry.sandbox.salesforce.objects import (
    FIELDS,
    ORG_ID,
    STAGES,
    Generator,
    make_id,
    object_of_id,
    parse_id,
    sf_datetime,
)
from canonry.sandbox.salesforce.query import API_VERSION, QueryCursor, SalesforceQuery
from canonry.sandbox.salesforce.rest import SalesforceRest
from canonry.sandbox.salesforce.soql import (
    Schema,
)
from canonry.sandbox.salesforce.writes import FailureRule, WriteMixin
from canonry.sandbox.webhooks import SALESFORCE_ATTEMPTS, WebhookSender

DEFAULT_CLIENT_ID = "canonry-salesforce-consumer-key"
DEFAULT_CLIENT_SECRET = "sandbox-salesforce-consumer-secret"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"
STAGE_BY_NAME = {s[0]: s for s in STAGES}

class SalesforceSimulator(SalesforceQuery, SalesforceRest, WriteMixin, SalesforceControl, OAuthRoutes,
                          SimulatorBase):
    slug = "salesforce"

    def __init__(self, state: SandboxState, daily_limit: int = 100_000, session_timeout: int = 7200,
                 rotate_refresh_tokens: bool = False,
                 redirect_uris: tuple[str, ...] = (DEFAULT_REDIRECT_URI,), custom_fields: bool = False) -> None:
        self.state = state
        self.gen = Generator(state.seed, state.scale)
        # `custom_fields=True`: `__c` fields of every kind on Account, Contact, Opportunity (custom_fields.py).
        self.custom = CustomFields(state.seed, self.gen.users) if custom_fields else None
        self.collections: dict[str, Collection] = {
            name: Collection(name, size, self._factory(name), lambda i, n=name: make_id(n, i),
                             lambda rid, n=name: parse_id(n, rid))
            for name, size in self.gen.sizes().items()
        }
        self.schema = Schema({name: {f.name.lower(): f.info() for f in self.fields(name)} for name in FIELDS})
        self.daily_limit = daily_limit
        self.api_used = 0
        self.usage_lock = threading.Lock()
        self.cursors: dict[str, QueryCursor] = {}
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

    def fields(self, name: str) -> list:
        """The object's fields as describe lists them: the standard ones, then the custom ones (if enabled)."""
        return FIELDS[name] + (self.custom.fields.get(name, []) if self.custom else [])

    def _factory(self, name: str):
        plain = self.gen.factory(name)
        if self.custom is None or name not in self.custom.fields:
            return plain
        return lambda index: {**plain(index), **self.custom.values(name, index)}

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
        for f in self.fields(name):
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

    def guard(self, request: Request, **options) -> tuple[Response | None, dict[str, str]]:
        """A live session, then the daily API budget (Salesforce has no per-second limit to speak of)."""
        if self.oauth.token_state(bearer_token(request)) != "valid":
            return self.error(401, "INVALID_SESSION_ID", "Session expired or invalid"), {}
        with self.usage_lock:
            if self.api_used >= self.daily_limit:
                return self.error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), {}
            self.api_used += 1
        return None, {}

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
            Route("/_sandbox/salesforce/custom_fields", self.control_custom_fields, methods=["POST"]),
        ]
        return routes

    @guarded
    async def versions_root(self, request: Request, headers: dict[str, str]) -> Response:
        base = f"/services/data/v{request.path_params['version']}"
        return self.ok({"sobjects": f"{base}/sobjects", "query": f"{base}/query", "queryAll": f"{base}/queryAll",
                        "limits": f"{base}/limits", "composite": f"{base}/composite"})

    # -- OAuth --------------------------------------------------------------------------------
    default_scope = "api refresh_token"
    unsupported_grant = "grant type not supported"

    def authorize_refusal(self, q) -> Response | None:
        if q.get("response_type") != "code":
            return json_response({"error": "unsupported_response_type", "error_description": "response type not "
                                  "supported"}, 400)
        return None

    def authorize_error(self, exc: OAuthError) -> Response:
        return json_response({"error": exc.error, "error_description": exc.description}, 400)

    async def token(self, request: Request) -> Response:
        form, basic = await self.token_request(request)
        grant = form.get("grant_type")
        try:
            issued = self.grant(form, basic)
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
        token = request.query_params.get("token") or ((await read_form(request)).get("token", "")
                                                       if request.method == "POST" else "")
        known = self.oauth.revoke(token)
        for access in self.access_by_refresh.pop(token, set()):   # a refresh token takes its sessions along
            self.oauth.revoke(access)
        if not known:
            return json_response({"error": "invalid_token", "error_description": "the token is invalid"}, 400)
        return Response(status_code=200)
