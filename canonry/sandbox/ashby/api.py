"""Ashby API simulator (API notes: sources/ashby/README.md).

RPC style: every call is `POST /<object>.<method>` with a JSON body. Served here:
`candidate.list`, `application.list`, `job.list`, `interviewSchedule.list`, `offer.list` (pagination and
incremental sync by `syncToken`), `department.list`, `location.list`, `user.list`, `archiveReason.list`,
`source.list`, `interviewPlan.list` (pagination only, `includeArchived` / `includeDeactivated`) and
`interviewStage.list` (per interview plan: `interviewPlanId` is required, no paging).

Behaviours: HTTP Basic with the API key as user name and a blank password (no header → 401, a wrong key
→ 403); `{success, results, moreDataAvailable, nextCursor}` pages, `limit` capped at 100, `syncToken` on
the last page of every pass; an incremental pass returns the records changed since the token's pass
started (status changes and archival included; hard-deleted candidates are simply absent, as in Ashby,
which has no deleted feed); logic errors are HTTP 200 with `success:false`, `errors` and
`errorInfo{code,message,requestId}` (`sync_token_expired`, `sync_token_invalid`, `invalid_next_cursor`,
`incremental_sync_too_large`, `missing_endpoint_permission`, `invalid_input` for a malformed declared
key); keys a list endpoint does not declare are ignored (sources/ashby/README.md); 429 with Retry-After;
signed webhooks (`Ashby-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`, body `{action, data}`)
to `state.webhook_url` on every mutation.

What "delete" means per object (the control endpoint's `delete` / `restore` actions):
candidates are hard-deleted (GDPR erasure: gone from every list); applications are archived
(status `Archived`, `archiveReason`, `archivedAt`); jobs get status `Archived`; interview schedules
status `Cancelled`; offers `offerStatus: OfferCancelled`; users are deactivated (`isEnabled: false`);
departments, locations, sources, archive reasons, interview plans and stages get `isArchived: true`.
`truth()` reports `deleted` as what the canonical layer must show: hard-deleted candidates, cancelled
interview schedules and archived metadata.

Sandbox-only control (`POST /_sandbox/ashby/control`): `{"expire_sync_tokens": true}`,
`{"incremental_page_cap": n}`, `{"logic_errors": {"offer.list": "some_code"}}`,
`{"missing_permissions": ["offer.list"]}`, `{"webhook_url": "...", "webhook_secret": "..."}`.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from canonry.sandbox.ashby.control import AshbyControl
from canonry.sandbox.ashby.custom_fields import RESOURCE_OBJECT_TYPE, AshbyCustomFields
from canonry.sandbox.ashby.data import (
    ARCHIVE_REASONS,
    DEFAULT_WEBHOOK_SECRET,
    ENDPOINTS,
    PAGE_MAX,
    PLANS,
    SOURCES,
    SPECS,
    STAGES_PER_PLAN,
    SYNC_TOKEN_TTL,
    AshbyData,
    AshbyError,
    ObjectSpec,
    uuid_ids,
)
from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.datagen import CITIES, DEPARTMENTS, Faker
from canonry.sandbox.engine import RateWindow, SandboxState, json_response, utcnow
from canonry.sandbox.kit import SimulatorBase, basic_credentials, decode_cursor, encode_cursor, guarded
from canonry.sandbox.webhooks import ASHBY_ATTEMPTS, ASHBY_NO_RETRY, WebhookSender


class AshbySimulator(AshbyData, AshbyControl, SimulatorBase):
    slug = "ashby"

    def __init__(self, state: SandboxState, rate_limit: int = 300, rate_interval: float = 10.0,
                 webhook_secret: str = DEFAULT_WEBHOOK_SECRET, incremental_page_cap: int = 50,
                 sync_token_ttl_seconds: float | None = None, custom_fields: bool = False) -> None:
        self.state = state
        scale = max(1, state.scale)
        self.sizes = {
            "candidates": scale,
            "applications": scale + scale // 4,
            "jobs": max(3, min(500, scale // 10)),
            "interview_schedules": scale // 2,
            "offers": scale // 8,
            "users": max(5, min(200, scale // 20)),
            "departments": len(DEPARTMENTS),
            "locations": len(CITIES),
            "archive_reasons": len(ARCHIVE_REASONS),
            "sources": len(SOURCES),
            "interview_plans": len(PLANS),
            "interview_stages": len(PLANS) * len(STAGES_PER_PLAN),
        }
        self.faker = {name: Faker(state.seed, f"ashby.{name}") for name in SPECS}
        factories: dict[str, Callable[[int], dict]] = {
            "candidates": self._candidate, "applications": self._application, "jobs": self._job,
            "interview_schedules": self._schedule, "offers": self._offer, "users": self._user,
            "departments": self._department, "locations": self._location,
            "archive_reasons": self._archive_reason, "sources": self._source,
            "interview_plans": self._plan, "interview_stages": self._stage,
        }
        # `custom_fields=True`: custom fields of Ashby's field types on candidates, applications, jobs.
        self.custom = AshbyCustomFields(state.seed) if custom_fields else None
        if self.custom is not None:
            for resource in RESOURCE_OBJECT_TYPE:
                factories[resource] = self._with_custom_fields(resource, factories[resource])
        self.collections: dict[str, Collection] = {
            name: Collection(name, self.sizes[name], factories[name], *uuid_ids(spec.namespace))
            for name, spec in SPECS.items()
        }
        self.window = RateWindow(rate_limit, rate_interval)
        self.webhook_secret = webhook_secret
        self.incremental_page_cap = incremental_page_cap
        self.sync_token_ttl = timedelta(seconds=sync_token_ttl_seconds) if sync_token_ttl_seconds else SYNC_TOKEN_TTL
        # syncToken -> (object, changes-since time, issued at); expired tokens are remembered as such.
        self.sync_tokens: dict[str, tuple[str, datetime, datetime]] = {}
        self.expired_tokens: set[str] = set()
        self.logic_errors: dict[str, str] = {}
        self.missing_permissions: set[str] = set()
        self.webhooks_sent: list[dict] = []
        self.webhook_sender = WebhookSender("ashby", ASHBY_ATTEMPTS, ASHBY_NO_RETRY)
        self.lock = threading.Lock()

    def _with_custom_fields(self, resource: str, factory: Callable[[int], dict]) -> Callable[[int], dict]:
        def make(index: int) -> dict:
            record = factory(index)
            record["customFields"] = self.custom.values(resource, index, record.get("customFields") or [])
            return record
        return make

    async def control_custom_fields(self, request: Request) -> Response:
        """Retitle a custom field (`{id, title}`): its id stays."""
        body = json.loads(await request.body() or b"{}")
        definition = self.custom.retitle(str(body.get("id")), str(body.get("title"))) if self.custom else None
        if definition is None:
            return json_response({"error": "unknown custom field (or the simulator runs without custom_fields)"},
                                 404)
        return json_response(definition)

    # -- HTTP ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/ashby/control", self.control, methods=["POST", "GET"]),
            Route("/_sandbox/ashby/custom_fields", self.control_custom_fields, methods=["POST"]),
            Route("/{endpoint}", self.rpc, methods=["POST"]),
        ]

    def error_response(self, status: int, message: str, kind: str) -> Response:
        code = {"server": "internal_error", "rate_limited": "rate_limit_exceeded",
                "unauthorized": "unauthenticated", "forbidden": "forbidden",
                "not_found": "endpoint_not_found"}.get(kind, kind)
        headers = {"Retry-After": "1"} if status == 429 else None
        return json_response(self._error_body(code, message), status, headers=headers)

    @staticmethod
    def _error_body(code: str, message: str) -> dict:
        return {"success": False, "errors": [code],
                "errorInfo": {"code": code, "message": message, "requestId": uuid.uuid4().hex}}

    def guard(self, request: Request, **options) -> tuple[Response | None, dict[str, str]]:
        try:
            credentials = basic_credentials(request)
        except ValueError:
            return self.error_response(401, "Malformed Basic authorization header", "unauthorized"), {}
        if credentials is None:
            return self.error_response(401, "Missing API key: use HTTP Basic with the key as user name",
                                       "unauthorized"), {}
        if not self.state.is_valid_token(credentials[0]):
            return self.error_response(403, "Invalid or deactivated API key", "forbidden"), {}
        if self.state.rate_limits:
            allowed, _ = self.window.take()
            if not allowed:
                return self.error_response(429, "Rate limit exceeded", "rate_limited"), {}
        return None, {}

    @guarded
    async def rpc(self, request: Request, headers: dict[str, str]) -> Response:
        endpoint = request.path_params["endpoint"]
        if endpoint == "customField.list":
            # Every definition fits one page (`limit` 100); archived ones only with `includeArchived`.
            fields = self.custom.definitions if self.custom else []
            return json_response({"success": True, "results": fields, "moreDataAvailable": False})
        spec = ENDPOINTS.get(endpoint)
        if spec is None:
            return json_response(self._error_body("endpoint_not_found", f"Unknown endpoint {endpoint}"), 404)
        try:
            raw = await request.body()
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise AshbyError("invalid_input", "The request body must be a JSON object")
            if endpoint in self.missing_permissions:
                raise AshbyError("missing_endpoint_permission",
                                 f"The API key lacks the permission required for {endpoint}")
            if endpoint in self.logic_errors:
                code = self.logic_errors[endpoint]
                raise AshbyError(code, f"{endpoint} failed: {code}")
            if spec.name == "interview_stages":
                return json_response(self._stages(body))
            return json_response(self._list(spec, body))
        except json.JSONDecodeError:
            return json_response(self._error_body("invalid_input", "The request body is not valid JSON"))
        except AshbyError as exc:
            return json_response(self._error_body(exc.code, exc.message))

    def _limit(self, body: dict) -> int:
        limit = body.get("limit", PAGE_MAX)
        if not isinstance(limit, int) or limit < 1:
            raise AshbyError("invalid_input", "limit must be a positive integer")
        return min(limit, PAGE_MAX)  # the server caps silently

    def _list(self, spec: ObjectSpec, body: dict) -> dict:
        # Keys an endpoint does not declare (`per_page`, `createdAfter` outside application.list) are
        # ignored, not refused, as Ashby does (sources/ashby/README.md, "Request bodies"); only the
        # declared keys are validated.
        limit = self._limit(body)
        include_archived = bool(body.get(spec.archived_flag)) if spec.archived_flag else False
        wanted = self._application_filter(body) if spec.name == "applications" else None
        now = utcnow()
        cursor = None
        if body.get("cursor"):
            try:
                cursor = decode_cursor(str(body["cursor"]))
            except ValueError:
                cursor = None
            if not isinstance(cursor, dict) or cursor.get("o") != spec.name:
                raise AshbyError("invalid_next_cursor", "The cursor is not valid for this endpoint")
        token = body.get("syncToken")
        since: datetime | None = None
        if token is not None:
            since = self._check_sync_token(spec, str(token), now)
        if cursor is not None:
            pass_started = datetime.fromisoformat(cursor["p"])
            if (cursor.get("s") is not None) != (since is not None):
                raise AshbyError("invalid_next_cursor", "The cursor belongs to a different kind of pass")
        else:
            pass_started = now
        collection = self.collections[spec.name]
        results: list[dict] = []
        more = False
        last: tuple[str, int] | None = None
        if since is None:
            start = int(cursor["i"]) if cursor else 0
            next_index = None
            for index, entry in self._iter_listed(spec.name, start, include_archived):
                rendered = self.render(spec.name, index, entry)
                if wanted is not None and not wanted(rendered):
                    continue
                if len(results) == limit:
                    more, next_index = True, index
                    break
                results.append(rendered)
            next_cursor = encode_cursor({"o": spec.name, "i": next_index, "p": pass_started.isoformat()}) \
                if more else None
        else:
            page = int(cursor["n"]) + 1 if cursor else 1
            if page > self.incremental_page_cap:
                raise AshbyError("incremental_sync_too_large",
                                 f"Too many changes since the sync token (more than {self.incremental_page_cap} "
                                 "pages): discard the token and run a full sync")
            after = (datetime.fromisoformat(cursor["t"]), int(cursor["x"])) if cursor else None
            lower = after[0] if after else since
            for index, entry in collection.iter_modified_since(lower):
                key = (entry.modified_at, index)
                if entry.modified_at < since or (after is not None and key <= after):
                    continue
                rendered = self.render(spec.name, index, entry)
                if wanted is not None and not wanted(rendered):
                    continue
                if len(results) == limit:
                    more = True
                    break
                results.append(rendered)
                last = (entry.modified_at.isoformat(), index)
            next_cursor = encode_cursor({"o": spec.name, "p": pass_started.isoformat(), "s": since.isoformat(),
                                          "t": last[0], "x": last[1], "n": page}) if more and last else None
        payload: dict = {"success": True, "results": results, "moreDataAvailable": more}
        if more:
            payload["nextCursor"] = next_cursor
        elif spec.sync_token:
            payload["syncToken"] = self._issue_sync_token(spec.name, pass_started, now)
        return payload

    @staticmethod
    def _application_filter(body: dict) -> Callable[[dict], bool] | None:
        """application.list's own filters: `createdAfter` (epoch ms, inclusive), `status`, `jobId`."""
        created_after, status, job_id = body.get("createdAfter"), body.get("status"), body.get("jobId")
        if created_after is not None and (not isinstance(created_after, int) or isinstance(created_after, bool)):
            raise AshbyError("invalid_input", "createdAfter must be an integer (epoch milliseconds)")
        if status is not None and status not in ("Active", "Archived", "Hired", "Lead"):
            raise AshbyError("invalid_input", "status must be one of Active, Archived, Hired, Lead")
        if job_id is not None and not isinstance(job_id, str):
            raise AshbyError("invalid_input", "jobId must be a string")
        if created_after is None and status is None and job_id is None:
            return None
        since = datetime.fromtimestamp(created_after / 1000, UTC) if created_after is not None else None

        def wanted(application: dict) -> bool:
            if since is not None and datetime.fromisoformat(application["createdAt"].replace("Z", "+00:00")) < since:
                return False
            if status is not None and application.get("status") != status:
                return False
            return job_id is None or (application.get("job") or {}).get("id") == job_id
        return wanted

    def _iter_listed(self, name: str, start: int, include_archived: bool) -> Iterator[tuple[int, Entry]]:
        collection = self.collections[name]
        for index in range(start, collection.size):
            entry = collection.get(index)
            if self._listed(name, entry, include_archived):
                yield index, entry

    def _stages(self, body: dict) -> dict:
        plan_id = body.get("interviewPlanId")
        if not plan_id:
            raise AshbyError("invalid_input", "interviewPlanId is required")
        plan = self.collections["interview_plans"].index_of(str(plan_id))
        if plan is None:
            raise AshbyError("not_found", f"No interview plan {plan_id}")
        collection = self.collections["interview_stages"]
        results = []
        for index in range(collection.size):
            entry = collection.get(index)
            if entry.record.get("interviewPlanId") == plan_id and entry.deleted_at is None:
                results.append(self.render("interview_stages", index, entry))
        results.sort(key=lambda r: r["orderInInterviewPlan"])
        return {"success": True, "results": results, "moreDataAvailable": False}

    def _issue_sync_token(self, name: str, since: datetime, now: datetime) -> str:
        token = uuid.uuid4().hex[:20]
        with self.lock:
            self.sync_tokens[token] = (name, since, now)
        return token

    def _check_sync_token(self, spec: ObjectSpec, token: str, now: datetime) -> datetime:
        if not spec.sync_token:
            raise AshbyError("invalid_input", f"{spec.endpoint} does not accept syncToken")
        with self.lock:
            if token in self.expired_tokens:
                raise AshbyError("sync_token_expired", "The sync token has expired: run a full sync")
            known = self.sync_tokens.get(token)
        if known is None or known[0] != spec.name:
            raise AshbyError("sync_token_invalid", "The sync token is not valid for this endpoint")
        if now - known[2] > self.sync_token_ttl:
            raise AshbyError("sync_token_expired", "The sync token has expired: run a full sync")
        return known[1]

    # -- sandbox controls ---------------------------------------------------------------------
    def expire_sync_tokens(self) -> int:
        """Test hook: every sync token issued so far is answered `sync_token_expired` from now on."""
        with self.lock:
            self.expired_tokens.update(self.sync_tokens)
            return len(self.sync_tokens)

    async def control(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"sync_tokens": len(self.sync_tokens), "expired": len(self.expired_tokens),
                                 "incremental_page_cap": self.incremental_page_cap,
                                 "logic_errors": self.logic_errors, "webhooks_sent": len(self.webhooks_sent),
                                 "missing_permissions": sorted(self.missing_permissions)})
        body = await request.json()
        result: dict = {}
        if body.get("expire_sync_tokens"):
            result["expired"] = self.expire_sync_tokens()
        if "incremental_page_cap" in body:
            self.incremental_page_cap = int(body["incremental_page_cap"])
        if "logic_errors" in body:
            self.logic_errors = dict(body["logic_errors"] or {})
        if "missing_permissions" in body:
            self.missing_permissions = set(body["missing_permissions"] or [])
        if "webhook_url" in body:
            self.state.webhook_url = body["webhook_url"]
        if "webhook_secret" in body:
            self.webhook_secret = body["webhook_secret"]
        result["ok"] = True
        return JSONResponse(result)
