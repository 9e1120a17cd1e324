"""Pipedrive simulator (API notes: sources/pipedrive/README.md; choices documented in sources/pipedrive/README.md).

Served, in Pipedrive's `{success, data, additional_data}` envelope:

* API v2 cursor lists `GET /api/v2/{persons,organizations,deals,activities,stages,pipelines}` with
  `limit` (default 100, at most 500: more is a 400), `cursor` (opaque; `additional_data.next_cursor`,
  null at the end), `updated_since` / `updated_until` (RFC3339, `>=` / `<` on `update_time`),
  `sort_by` (`id` | `update_time` | `add_time`), `sort_direction` (`asc` | `desc`), `ids`, `owner_id`;
  deals also take `status` (comma list of open, won, lost, deleted; default every status but deleted).
  Deleted persons, organizations and activities are not listed (v2 excludes them); deleted deals keep
  `is_deleted: true, status: "deleted"` and are listed only with `status=…deleted`.
* API v1 offset lists (`start`, `limit` ≤ 500, `additional_data.pagination{start, limit,
  more_items_in_collection, next_start}`): `/v1/persons|organizations|deals|activities` (deals default
  `status=all_not_deleted`), `/v1/notes` (`sort=update_time ASC|DESC`), `/v1/leads` (`archived_status`,
  `sort`), `/v1/users` (every user in one answer, as Pipedrive does) and
  `/v1/recents?since_timestamp=YYYY-MM-DD HH:MM:SS&items=…` — every change at or after the timestamp
  (second precision), deleted items included with `active_flag: false` in their v1 body; a user's `data`
  is a one-element list (Pipedrive's quirk), every other item's an object.
* Field definitions `GET /v1/{person,deal,organization,activity,note,product}Fields` (offset-paged like
  every v1 list; custom fields keyed by 40-character hashes) and `PUT /v1/<entity>Fields/{id}` to rename
  a custom field (`canonry/sandbox/pipedrive/fields.py`). Records carry custom field values only with
  the `custom_fields=True` option: v2 under `custom_fields` by key, v1 at the top level by key.
* Timestamps: v2 RFC3339 seconds (`2025-01-01T00:00:07Z`), v1 `YYYY-MM-DD HH:MM:SS` (UTC), leads ISO with
  milliseconds; lead ids are UUIDs, every other id an integer.
* Auth: an API token as `api_token` query parameter or `x-api-token` header, or an OAuth bearer token
  (`/oauth/authorize`, `/oauth/token` with HTTP Basic client authentication; 1-hour access tokens).
  A bad credential answers 401 `{success: false, error: "unauthorized access", errorCode: 401}`.
* Burst rate limit per rolling 2 s window: 429 with `x-ratelimit-limit/remaining/reset` headers and the
  same error body; every answer carries the `x-ratelimit-*` headers and `x-daily-requests-left`.
* Search `GET /api/v2/{persons,organizations}/search` (term, fields, exact_match, limit, cursor):
  canonry/sandbox/pipedrive/search.py.
* Writes for reverse ETL: `POST/PATCH/DELETE /api/v2/{persons,organizations,deals}[/{id}]` and v1
  `POST/PUT/DELETE /v1/…`, recorded in a write log (`GET /_sandbox/pipedrive/writes`) with injectable
  per-record failures (`POST /_sandbox/pipedrive/write_failures`, or the `write_failures` option).
* Webhooks v2 to `state.webhook_url` on every change of persons, organizations, deals, activities, notes
  and leads: `{meta{action: create|change|delete, entity, entity_id, id, timestamp, attempt}, data,
  previous}` with HTTP Basic credentials (`webhook_user` / `webhook_password`), retried on non-2xx.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.datagen import Faker
from canonry.sandbox.engine import (
    CONTROL_PREFIX,
    RateWindow,
    SandboxState,
    bearer_token,
    json_response,
)
from canonry.sandbox.kit import (
    OAuthRoutes,
    SimulatorBase,
    decode_cursor,
    int_ids,
)
from canonry.sandbox.oauth_server import OAuthClient, OAuthError, OAuthServer
from canonry.sandbox.pipedrive.control import PipedriveControl
from canonry.sandbox.pipedrive.data import (
    BURST_INTERVAL,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_LIMIT,
    DEFAULT_REDIRECT_URI,
    DEFAULT_WEBHOOK_PASSWORD,
    DEFAULT_WEBHOOK_USER,
    OFFSETS,
    PAGE_MAX,
    PIPELINES,
    STAGES,
    USER_OFFSET,
    BadRequest,
    PipedriveData,
)
from canonry.sandbox.pipedrive.fields import FIELD_ENDPOINTS, FieldDefinitions
from canonry.sandbox.pipedrive.reads import PipedriveReads
from canonry.sandbox.pipedrive.search import PipedriveSearch
from canonry.sandbox.pipedrive.writes import PipedriveWrites
from canonry.sandbox.webhook_registration import pipedrive_webhook_routes
from canonry.sandbox.webhooks import PIPEDRIVE_ATTEMPTS, WebhookSender


class PipedriveSimulator(PipedriveData, PipedriveReads, PipedriveSearch, PipedriveWrites, PipedriveControl,
                         OAuthRoutes, SimulatorBase):
    slug = "pipedrive"

    def __init__(self, state: SandboxState, burst_limit: int = 80, daily_budget: int = 1_000_000,
                 write_failures: dict[str, dict[str, tuple[int, str]]] | None = None,
                 custom_fields: bool = False, webhook_user: str = DEFAULT_WEBHOOK_USER,
                 webhook_password: str = DEFAULT_WEBHOOK_PASSWORD) -> None:
        self.state = state
        # Webhooks v2 (HTTP Basic credentials) to state.webhook_url on changes: canonry/sandbox/webhooks.py.
        self.webhook_user, self.webhook_password = webhook_user, webhook_password
        self.webhooks = WebhookSender("pipedrive", PIPEDRIVE_ATTEMPTS)
        scale = max(1, state.scale)
        self.sizes = {
            "organizations": scale, "persons": 2 * scale, "deals": scale, "activities": 3 * scale,
            "notes": scale, "leads": max(10, scale // 2), "users": max(5, min(200, scale // 20)),
            "pipelines": len(PIPELINES), "stages": len(STAGES),
        }
        # Field definitions are always served; records carry custom field values only with
        # `custom_fields=True` (their own random stream: no other generated value moves).
        self.field_definitions = FieldDefinitions(state.seed, USER_OFFSET + 1, self.sizes["users"])
        self.custom_values = custom_fields
        self.faker = {name: Faker(state.seed, f"pipedrive.{name}") for name in self.sizes}
        factories: dict[str, Callable[[int], dict]] = {
            "organizations": self._organization, "persons": self._person, "deals": self._deal,
            "activities": self._activity, "notes": self._note, "leads": self._lead, "users": self._user,
            "pipelines": self._pipeline, "stages": self._stage,
        }
        self.collections: dict[str, Collection] = {}
        for name, size in self.sizes.items():
            if name == "leads":
                id_of, parse = self._lead_id, self._parse_lead_id
            elif name in ("pipelines", "stages"):
                table = PIPELINES if name == "pipelines" else STAGES
                id_of = (lambda t: (lambda i: str(t[i][0]) if i < len(t) else str(100 + i + 1)))(table)
                parse = (lambda t: (lambda s: next((i for i, row in enumerate(t) if str(row[0]) == s),
                                                   int(s) - 101 if s.isdigit() else None)))(table)
            else:
                id_of, parse = int_ids(OFFSETS[name])
            self.collections[name] = Collection(name, size, factories[name], id_of, parse)
        self.burst = RateWindow(burst_limit, BURST_INTERVAL)
        self.daily_budget = daily_budget
        self.oauth = OAuthServer(state, access_ttl=3599, token_prefix="pd")
        self.oauth.register(OAuthClient(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, (DEFAULT_REDIRECT_URI,)))
        self.writes: list[dict] = []
        # object -> {remote id | "name:<name>" | "*": (status, error)}
        self.write_failures: dict[str, dict[str, tuple[int, str]]] = {
            k: dict(v) for k, v in (write_failures or {}).items()}

    # -- errors, auth, rate limits ---------------------------------------------------------------
    def error_response(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> Response:
        if kind == "rate_limited":
            hdrs = {"x-ratelimit-limit": str(self.burst.limit), "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": "1", **(headers or {})}
            return json_response({"success": False, "error": "Request over limit",
                                  "errorCode": 429, "error_info": "Please check developers.pipedrive.com"}, 429, hdrs)
        if kind == "unauthorized":
            return json_response({"success": False, "error": "unauthorized access", "errorCode": 401,
                                  "error_info": "Please check developers.pipedrive.com"}, 401, headers)
        return json_response({"success": False, "error": message or "Internal server error", "errorCode": status,
                              "error_info": "Please check developers.pipedrive.com", "data": None,
                              "additional_data": None}, status, headers)

    def _token(self, request: Request) -> str | None:
        return (request.query_params.get("api_token") or request.headers.get("x-api-token")
                or bearer_token(request))

    def guard(self, request: Request, **options) -> tuple[Response | None, dict[str, str]]:
        token_state = self.oauth.token_state(self._token(request))
        if token_state != "valid":
            return self.error_response(401, "unauthorized access", "unauthorized"), {}
        if not self.state.rate_limits:
            return None, {}
        allowed, remaining = self.burst.take()
        reset = self._reset_seconds()
        headers = {"x-ratelimit-limit": str(self.burst.limit), "x-ratelimit-remaining": str(remaining),
                   "x-ratelimit-reset": str(reset),
                   "x-daily-requests-left": str(max(0, self.daily_budget - self.state.api_requests))}
        if not allowed:
            return self.error_response(429, "", "rate_limited", headers), headers
        return None, headers

    def _reset_seconds(self) -> int:
        with self.burst.lock:
            if not self.burst.stamps:
                return int(BURST_INTERVAL)
            left = self.burst.interval - (time.monotonic() - self.burst.stamps[0])
        return max(1, math.ceil(left))

    # -- routes -------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        routes = [
            Route("/api/v2/{object}", self.v2_list, methods=["GET"]),
            Route("/api/v2/{object}", self.create, methods=["POST"]),
            Route("/api/v2/{object}/search", self.v2_search, methods=["GET"]),
            Route("/api/v2/{object}/{record_id}", self.v2_get, methods=["GET"]),
            Route("/api/v2/{object}/{record_id}", self.update, methods=["PATCH"]),
            Route("/api/v2/{object}/{record_id}", self.delete, methods=["DELETE"]),
            Route("/v1/recents", self.recents, methods=["GET"]),
            Route("/v1/notes", self.v1_notes, methods=["GET"]),
            Route("/v1/leads", self.v1_leads, methods=["GET"]),
            Route("/v1/users", self.v1_users, methods=["GET"]),
            *pipedrive_webhook_routes(self),  # POST /v1/webhooks: canonry/sandbox/webhook_registration.py
            *(Route(f"/v1/{segment}", self.v1_fields, methods=["GET"]) for segment in FIELD_ENDPOINTS),
            *(Route(f"/v1/{segment}/{{field_id}}", self.v1_field_update, methods=["PUT"])
              for segment in FIELD_ENDPOINTS),
            Route("/v1/{object}", self.v1_list, methods=["GET"]),
            Route("/v1/{object}", self.create, methods=["POST"]),
            Route("/v1/{object}/{record_id}", self.update, methods=["PUT"]),
            Route("/v1/{object}/{record_id}", self.delete, methods=["DELETE"]),
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/token", self.token, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/pipedrive/writes", self.control_writes, methods=["GET", "DELETE"]),
            Route(f"{CONTROL_PREFIX}/pipedrive/write_failures", self.control_write_failures,
                  methods=["POST", "DELETE"]),
        ]
        return routes

    @staticmethod
    def _ok(data, additional: dict | None = None, headers: dict[str, str] | None = None) -> Response:
        body = {"success": True, "data": data}
        if additional is not None:
            body["additional_data"] = additional
        return json_response(body, headers=headers)

    @staticmethod
    def _limit(request: Request) -> int:
        raw = request.query_params.get("limit")
        if raw in (None, ""):
            return DEFAULT_LIMIT
        if not raw.isdigit() or not 1 <= int(raw) <= PAGE_MAX:
            raise BadRequest(f"Validation failed: limit: Parameter 'limit' must be an integer between 1 and {PAGE_MAX}")
        return int(raw)

    # v2 lists ---------------------------------------------------------------------------------
    def _deal_statuses(self, request: Request, default: set[str]) -> set[str]:
        raw = request.query_params.get("status")
        if not raw:
            return default
        if raw == "all_not_deleted":
            return {"open", "won", "lost"}
        statuses = {s.strip() for s in raw.split(",") if s.strip()}
        unknown = statuses - {"open", "won", "lost", "deleted"}
        if unknown:
            raise BadRequest(f"Validation failed: status: unknown value(s) {', '.join(sorted(unknown))}")
        return statuses

    def _matches(self, name: str, entry: Entry, statuses: set[str] | None) -> bool:
        deleted = entry.deleted_at is not None
        if name == "deals" and statuses is not None:
            return ("deleted" if deleted else entry.record["status"]) in statuses
        return not deleted

    @staticmethod
    def _decode_cursor(cursor: str) -> list:
        try:
            return decode_cursor(cursor)
        except ValueError:
            raise BadRequest("Validation failed: cursor: invalid cursor") from None

    # -- OAuth --------------------------------------------------------------------------------
    def authorize_error(self, exc: OAuthError) -> Response:
        return json_response({"success": False, "error": exc.description, "errorCode": 400}, 400)

    async def token(self, request: Request) -> Response:
        form, basic = await self.token_request(request)
        try:
            issued = self.grant(form, basic)
        except OAuthError as exc:
            return json_response({"success": False, "error": exc.error, "message": exc.description}, exc.status)
        return json_response({"access_token": issued.access_token, "token_type": "Bearer",
                              "refresh_token": issued.refresh_token, "scope": " ".join(issued.scopes),
                              "expires_in": issued.expires_in, "api_domain": self.state.base_url})
