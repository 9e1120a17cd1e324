"""Greenhouse Harvest v3 simulator (API notes: sources/greenhouse/README.md).

Served:
* `POST /token`: OAuth 2.0 client credentials (HTTP Basic client id/secret, form
  `grant_type=client_credentials&sub=<user id>`), one-hour tokens, answer carrying both `expires_in` and
  `expires_at` (the reference records clients parsing either).
* `GET /v3/<resource>` for candidates, applications, jobs, job_stages, scheduled_interviews, offers,
  departments, offices, users: bare JSON array bodies, `Link: <…?cursor=…>; rel="next"` cursor paging
  (only `next`, as the v3 pagination guide says). `per_page` (1-500, default 100), `ids`, parent filters
  (`candidate_ids`, `job_ids`, `application_ids`) and `created_at` / `updated_at` filters written
  `gte|<ISO>` (also `gt|`, `lte|`, `lt|`; repeat the parameter for a range) are accepted on the first call
  only: when `cursor` is present it must be the only query parameter, anything else is a 400.
* v3 standardizations: `*_at` ISO-8601 UTC, `*_on` dates, children carry their parent's id, parents embed
  no children, every resource has `created_at` / `updated_at`, priorities are `sort_order`.
* No delete feed: a deleted record simply disappears from every list. Deleting a candidate silently
  deletes its applications (as Greenhouse does).
* A rolling 10-second limit with `X-RateLimit-Limit` / `X-RateLimit-Remaining` on every answer, 429 with
  `Retry-After` and `X-RateLimit-Reset`; 401/403/404/422 bodies as in v1 (`{"message": …}`, 422 with
  `errors[{message, field}]`).
* Signed webhooks to `state.webhook_url` on mutations: `Signature: sha256 <hex HMAC-SHA256(secret, raw
  body)>`, a unique `Greenhouse-Event-ID`, body `{"action", "payload"}` with `<`, `>`, `&` escaped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.datagen import CITIES, DEPARTMENTS, Faker
from canonry.sandbox.engine import RateWindow, SandboxState, bearer_token, json_response
from canonry.sandbox.greenhouse.control import GreenhouseControl
from canonry.sandbox.greenhouse.custom_fields import RESOURCE_FIELD_TYPE, GreenhouseCustomFields
from canonry.sandbox.greenhouse.data import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_WEBHOOK_SECRET,
    FILTER_OPERATORS,
    OFFSETS,
    PARENT_FILTERS,
    PER_PAGE_DEFAULT,
    PER_PAGE_MAX,
    RATE_LIMIT_WINDOW_SECONDS,
    RESOURCES,
    STAGES_PER_JOB,
    TOKEN_TTL_SECONDS,
    ApiError,
    GreenhouseData,
    TimeFilter,
    iso,
    parse_iso,
)
from canonry.sandbox.kit import (
    SimulatorBase,
    basic_credentials,
    decode_cursor,
    encode_cursor,
    guarded,
    int_ids,
    read_form,
    read_json,
)
from canonry.sandbox.oauth_server import OAuthClient, OAuthError, OAuthServer


class GreenhouseSimulator(GreenhouseData, GreenhouseControl, SimulatorBase):
    slug = "greenhouse"

    def __init__(self, state: SandboxState, burst_limit: int = 50, webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
                 webhook_url: str | None = None, custom_fields: bool = False) -> None:
        self.state = state
        scale = max(1, state.scale)
        self.sizes = {
            "candidates": scale,
            "applications": scale + scale // 2,
            "jobs": max(4, scale // 10),
            "scheduled_interviews": scale,
            "offers": max(1, scale // 3),
            "departments": len(DEPARTMENTS),
            "offices": len(CITIES),
            "users": max(5, min(200, scale // 20)),
        }
        self.sizes["job_stages"] = self.sizes["jobs"] * STAGES_PER_JOB
        self.faker = {name: Faker(state.seed, f"greenhouse.{name}") for name in RESOURCES}
        factories: dict[str, Callable[[int], dict]] = {
            "candidates": self._candidate, "applications": self._application, "jobs": self._job,
            "job_stages": self._job_stage, "scheduled_interviews": self._interview, "offers": self._offer,
            "departments": self._department, "offices": self._office, "users": self._user,
        }
        # `custom_fields=True`: custom fields of every value type on candidates, applications, jobs.
        self.custom = GreenhouseCustomFields(
            state.seed, self.sizes["users"], lambda i: self._ref("users", i),
            lambda i: self._user(i)["name"]) if custom_fields else None
        if self.custom is not None:
            for resource in RESOURCE_FIELD_TYPE:
                factories[resource] = self._with_custom_fields(resource, factories[resource])
        self.collections: dict[str, Collection] = {
            name: Collection(name, self.sizes[name], factories[name], *int_ids(OFFSETS[name]))
            for name in RESOURCES
        }
        self.burst = RateWindow(burst_limit, RATE_LIMIT_WINDOW_SECONDS)
        self.oauth = OAuthServer(state, access_ttl=TOKEN_TTL_SECONDS, token_prefix="gh")
        self.oauth.register(OAuthClient(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, ()))
        self.webhook_secret = webhook_secret
        if webhook_url:
            state.webhook_url = webhook_url
        self.webhook_deliveries: list[dict] = []

    def _with_custom_fields(self, resource: str, factory: Callable[[int], dict]) -> Callable[[int], dict]:
        def make(index: int) -> dict:
            record = factory(index)
            record["custom_fields"] = self.custom.values(resource, index, record.get("custom_fields"))
            return record
        return make

    # -- errors ---------------------------------------------------------------------------------
    def error_response(self, status: int, message: str, kind: str) -> Response:
        if kind == "rate_limited":
            return json_response({"message": "Rate limit exceeded. Retry after the time in Retry-After."}, 429,
                                 headers={"Retry-After": "1", "X-RateLimit-Limit": str(self.burst.limit),
                                          "X-RateLimit-Remaining": "0",
                                          "X-RateLimit-Reset": str(int(time.time()) + 1)})
        if kind == "unauthorized":
            return json_response({"message": message or "Unauthorized"}, 401)
        if kind == "server":
            return json_response({"message": "Internal server error"}, status)
        return json_response({"message": message}, status)

    def _api_error(self, exc: ApiError, headers: dict[str, str]) -> Response:
        body: dict = {"message": exc.message}
        if exc.errors is not None:
            body["errors"] = exc.errors
        return json_response(body, exc.status, headers=headers)

    def guard(self, request: Request, **options) -> tuple[Response | None, dict[str, str]]:
        token_state = self.oauth.token_state(bearer_token(request))
        if token_state != "valid":
            message = ("Access token expired" if token_state == "expired"
                       else "Invalid or missing access token. Send Authorization: Bearer <token> from POST /token.")
            return self.error_response(401, message, "unauthorized"), {}
        if not self.state.rate_limits:
            return None, {}
        allowed, remaining = self.burst.take()
        headers = {"X-RateLimit-Limit": str(self.burst.limit), "X-RateLimit-Remaining": str(remaining)}
        if not allowed:
            with self.burst.lock:
                oldest = self.burst.stamps[0] if self.burst.stamps else time.monotonic()
            wait = max(1, math.ceil(oldest + self.burst.interval - time.monotonic()))
            headers.update({"Retry-After": str(wait), "X-RateLimit-Reset": str(int(time.time()) + wait)})
            return json_response({"message": "Rate limit exceeded. Retry after the time in Retry-After."}, 429,
                                 headers=headers), headers
        return None, headers

    # -- routes ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route("/token", self.token, methods=["POST"]),
            Route("/v3/custom_fields", self.list_custom_fields, methods=["GET"]),
            Route("/_sandbox/greenhouse/custom_fields", self.control_custom_fields, methods=["POST"]),
            Route("/v3/{resource}", self.list_resource, methods=["GET"]),
            Route("/v3/{resource}/{record_id}", self.get_resource, methods=["GET"]),
        ]

    async def token(self, request: Request) -> Response:
        form = await read_form(request)
        try:
            credentials = basic_credentials(request)
        except ValueError:
            return json_response({"error": "invalid_client", "error_description": "malformed Basic header"}, 401)
        if credentials is None:
            return json_response({"error": "invalid_client",
                                  "error_description": "client authentication uses HTTP Basic"}, 401)
        client_id, client_secret = credentials
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type",
                                  "error_description": "only grant_type=client_credentials is supported"}, 400)
        sub = form.get("sub")
        if sub is not None:
            users = self.collections["users"]
            index = users.index_of(str(sub))
            if index is None or not users.is_alive(index):
                return json_response({"error": "invalid_request",
                                      "error_description": f"sub {sub!r} is not the id of a Greenhouse user"}, 400)
        try:
            issued = self.oauth.client_credentials(client_id, client_secret, ())
        except OAuthError as exc:
            return json_response({"error": exc.error, "error_description": exc.description}, exc.status)
        expires_at = datetime.now(UTC) + timedelta(seconds=issued.expires_in)
        return json_response({"access_token": issued.access_token, "token_type": "Bearer",
                              "expires_in": issued.expires_in,
                              "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")})

    @guarded
    async def list_custom_fields(self, request: Request, headers: dict[str, str]) -> Response:
        """`GET /v3/custom_fields[?field_type=…]`: every definition fits one page (one `per_page` of 500)."""
        unknown = sorted(set(request.query_params) - {"per_page", "field_type", "active", "name_key"})
        if unknown:
            return self._api_error(ApiError(422, "Validation error", [
                {"message": "is not a permitted query parameter", "field": k} for k in unknown]), headers)
        listed = self.custom.listed(request.query_params.get("field_type")) if self.custom else []
        if "name_key" in request.query_params:
            listed = [d for d in listed if d["name_key"] == request.query_params["name_key"]]
        return json_response(listed, headers=headers)

    async def control_custom_fields(self, request: Request) -> Response:
        """Rename a custom field (`{field_type, name_key, name}`): the name_key stays."""
        body = await read_json(request) or {}
        renamed = self.custom.rename(str(body.get("field_type")), str(body.get("name_key")), str(body.get("name"))) \
            if self.custom else None
        if renamed is None:
            return json_response({"message": "unknown custom field (or the simulator runs without custom_fields)"},
                                 404)
        return json_response(renamed)

    @guarded
    async def get_resource(self, request: Request, headers: dict[str, str]) -> Response:
        name = request.path_params["resource"]
        if name not in self.collections:
            return json_response({"message": f"Resource not found: {name}"}, 404, headers=headers)
        collection = self.collections[name]
        index = collection.index_of(request.path_params["record_id"])
        if index is None or not collection.is_alive(index):
            return json_response({"message": f"Resource not found: {name} {request.path_params['record_id']}"},
                                 404, headers=headers)
        return json_response(self.render(name, index, collection.get(index)), headers=headers)

    @guarded
    async def list_resource(self, request: Request, headers: dict[str, str]) -> Response:
        name = request.path_params["resource"]
        if name not in self.collections:
            return json_response({"message": f"Resource not found: {name}"}, 404, headers=headers)
        try:
            query = self._query(name, request)
            page, next_position = self._page(name, query)
        except ApiError as exc:
            return self._api_error(exc, headers)
        if next_position is not None:
            cursor = encode_cursor({**query, "after": next_position}, sort_keys=True)
            headers["Link"] = f'<{self.state.base_url}/v3/{name}?cursor={cursor}>; rel="next"'
        return json_response(page, headers=headers)

    # -- list mechanics -------------------------------------------------------------------------
    @staticmethod
    def _decode_cursor(cursor: str) -> dict:
        try:
            payload = decode_cursor(cursor)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or "r" not in payload:
            raise ApiError(400, "Invalid cursor: take it unchanged from the Link header's rel=\"next\" URL.")
        return payload

    def _query(self, name: str, request: Request) -> dict:
        """The normalised query of this request (a first call's parameters, or what its cursor carries)."""
        keys = list(request.query_params.keys())
        if "cursor" in keys:
            others = sorted({k for k in keys if k != "cursor"})
            if others or len(request.query_params.getlist("cursor")) > 1:
                raise ApiError(400, "When `cursor` is present it must be the only query parameter (also got: "
                               f"{', '.join(others) or 'a second cursor'}). Put filters and per_page on the first "
                               "request only, then follow the Link header's rel=\"next\" URL exactly.")
            query = self._decode_cursor(request.query_params["cursor"])
            if query["r"] != name:
                raise ApiError(400, f"Invalid cursor: it pages /v3/{query['r']}, not /v3/{name}.")
            return query
        allowed = {"per_page", "ids", "created_at", "updated_at", *PARENT_FILTERS.get(name, {})}
        unknown = sorted(set(keys) - allowed)
        if unknown:
            raise ApiError(422, "Validation error", [{"message": "is not a permitted query parameter", "field": k}
                                                     for k in unknown])
        errors: list[dict] = []
        per_page = PER_PAGE_DEFAULT
        if "per_page" in request.query_params:
            raw = request.query_params["per_page"]
            if not raw.isdigit() or not 1 <= int(raw) <= PER_PAGE_MAX:
                errors.append({"message": f"must be an integer between 1 and {PER_PAGE_MAX}", "field": "per_page"})
            else:
                per_page = int(raw)
        time_filters: list[list] = []
        for field_name in ("created_at", "updated_at"):
            for raw in request.query_params.getlist(field_name):
                op, _, value = raw.partition("|")
                try:
                    if op not in FILTER_OPERATORS:
                        raise ValueError(op)
                    time_filters.append([field_name, op, iso(parse_iso(value))])
                except ValueError:
                    errors.append({"message": "must be written <gte|gt|lte|lt>|<ISO-8601 time>, e.g. "
                                              "gte|2024-01-01T00:00:00Z", "field": field_name})
        id_filters: dict[str, list[str]] = {}
        for param in ("ids", *PARENT_FILTERS.get(name, {})):
            if param in request.query_params:
                values = [v for v in request.query_params[param].split(",") if v]
                if not all(v.isdigit() for v in values):
                    errors.append({"message": "must be a comma-separated list of ids", "field": param})
                id_filters[param] = values
        if errors:
            raise ApiError(422, "Validation error", errors)
        return {"r": name, "pp": per_page, "t": time_filters, "i": id_filters}

    def _page(self, name: str, query: dict) -> tuple[list[dict], list | None]:
        collection = self.collections[name]
        filters = [TimeFilter(f, op, parse_iso(at)) for f, op, at in query["t"]]
        lower = [f.at for f in filters if f.field == "updated_at" and f.op in ("gte", "gt")]
        after = query.get("after")
        by_update = bool(lower)
        if by_update:
            # Ordered by (updated_at, id): the store finds "updated since" without a scan.
            start = datetime.fromisoformat(after[0]) if after else max(lower)
            source: Iterator[tuple[int, Entry]] = collection.iter_modified_since(start)
        else:
            source = collection.iter_alive(after + 1 if after is not None else 0)
        id_sets = {param: {int(v) for v in values} for param, values in query["i"].items()}
        parents = PARENT_FILTERS.get(name, {})
        per_page = query["pp"]
        page: list[dict] = []
        last_position = None
        for index, entry in source:
            if by_update and after and (entry.modified_at.isoformat(), index) <= (after[0], after[1]):
                continue
            if not all(f.matches(entry.created_at if f.field == "created_at" else entry.modified_at)
                       for f in filters):
                continue
            if "ids" in id_sets and int(collection.id_of(index)) not in id_sets["ids"]:
                continue
            if any(entry.record.get(parents[p]) not in ids for p, ids in id_sets.items() if p != "ids"):
                continue
            if len(page) == per_page:
                return page, last_position
            page.append(self.render(name, index, entry))
            last_position = [entry.modified_at.isoformat(), index] if by_update else index
        return page, None
