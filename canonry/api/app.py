"""The read API application (Starlette): auth, scopes, per-key rate limits, error bodies, routes.

Starlette rather than FastAPI: it is already the project's HTTP stack (sandboxes, webhooks), and the
OpenAPI document is generated from the canonical contract (openapi.py), not from handler signatures —
FastAPI's main gift (models and OpenAPI from type hints) would be a second source of the same contract.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from canonry.api import events as events_api
from canonry.api import store
from canonry.api.keys import ApiKey, KeyRing
from canonry.api.openapi import document
from canonry.api.resources import (
    DEFAULT_PAGE_SIZE,
    EVENTS_PATH,
    EVENTS_SCOPE,
    MAX_PAGE_SIZE,
    RESOURCES,
    Resource,
)
from canonry.governance import audit

RATE_WINDOW_SECONDS = 60


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, hint: str | None = None,
                 parameter: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.hint = status, code, message, hint
        self.parameter, self.headers = parameter, headers or {}

    def response(self) -> JSON:
        body: dict[str, str] = {"code": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        if self.parameter:
            body["parameter"] = self.parameter
        return JSON({"error": body}, status_code=self.status, headers=self.headers)


# -- rate limits ----------------------------------------------------------------------------------------

@dataclass
class Window:
    started: float
    used: int = 0


class RateLimiter:
    """A fixed window per key (`RATE_WINDOW_SECONDS`), `ApiKey.rate_limit` requests each, in this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock, self.windows = clock, {}

    def take(self, key: ApiKey) -> dict[str, str]:
        """The RateLimit-* headers of this request; ApiError 429 when the window is spent."""
        now = self.clock()
        window = self.windows.get(key.key_id)
        if window is None or now - window.started >= RATE_WINDOW_SECONDS:
            window = self.windows[key.key_id] = Window(now)
        reset = max(1, int(window.started + RATE_WINDOW_SECONDS - now + 0.999))
        if window.used >= key.rate_limit:
            headers = {"RateLimit-Limit": str(key.rate_limit), "RateLimit-Remaining": "0",
                       "RateLimit-Reset": str(reset), "Retry-After": str(reset)}
            raise ApiError(429, "rate_limited", f"this key's limit of {key.rate_limit} requests per "
                           f"{RATE_WINDOW_SECONDS} s is spent", f"retry after {reset} s", headers=headers)
        window.used += 1
        return {"RateLimit-Limit": str(key.rate_limit), "RateLimit-Remaining": str(key.rate_limit - window.used),
                "RateLimit-Reset": str(reset)}


# -- parameters -----------------------------------------------------------------------------------------

def _boolean(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return False
    if value not in ("true", "false"):
        raise ApiError(400, "invalid_parameter", f"{name}={value!r} is not a boolean", "write true or false",
                       parameter=name)
    return value == "true"


def _limit(request: Request) -> int:
    value = request.query_params.get("limit")
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise ApiError(400, "invalid_parameter", f"limit={value!r} is not a page size",
                       f"an integer from 1 to {MAX_PAGE_SIZE}", parameter="limit")
    return int(value)


def _timestamp(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name}={value!r} is not an ISO-8601 date-time",
                       "e.g. 2025-01-31T00:00:00Z", parameter=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _fields(request: Request, resource: Resource) -> list[str] | None:
    value = request.query_params.get("fields")
    if not value:
        return None
    fields = value.split(",")
    unknown = [f for f in fields if f not in resource.columns]
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown field(s) {', '.join(map(repr, unknown))} of "
                       f"{resource.path}", f"fields are: {', '.join(resource.columns)}", parameter="fields")
    return fields


def _cursor(request: Request) -> str | None:
    value = request.query_params.get("cursor")
    if value is None:
        return None
    try:
        return store.decode_cursor(value)
    except store.InvalidParameter as exc:
        raise ApiError(400, "invalid_parameter", str(exc), parameter=exc.parameter) from None


# -- the application --------------------------------------------------------------------------------------

class ReadApi:
    def __init__(self, keys: KeyRing | None = None, limiter: RateLimiter | None = None) -> None:
        self.keys, self.limiter, self.lineage = keys or KeyRing(), limiter or RateLimiter(), store.RawLineage()

    def authorise(self, request: Request, scope: str, path: str) -> tuple[ApiKey, dict[str, str]]:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise ApiError(401, "unauthenticated", "no API key in the request",
                           "send `Authorization: Bearer <key>` (canonry api keys create --tenant T)",
                           headers={"WWW-Authenticate": "Bearer"})
        key = self.keys.verify(presented.strip())
        if key is None:
            raise ApiError(401, "unauthenticated", "this API key is unknown or revoked",
                           "create one with `canonry api keys create --tenant T`",
                           headers={"WWW-Authenticate": "Bearer"})
        headers = self.limiter.take(key)  # before the scope check: a forbidden request counts too
        if scope not in key.scopes:
            raise ApiError(403, "forbidden", f"this key lacks the scope {scope} of {path}",
                           f"create a key with `--scope {scope}`", headers=headers)
        return key, headers

    def endpoint(self, resource: Resource, handler: Callable[..., Any]) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            try:
                key, headers = self.authorise(request, resource.scope, resource.path)
                body = await run_in_threadpool(handler, request, resource, key)
            except ApiError as exc:
                return exc.response()
            except store.WarehouseBusy as exc:
                return ApiError(503, "warehouse_busy", str(exc), "retry in a moment",
                                headers={"Retry-After": str(store.BUSY_RETRY_AFTER_SECONDS)}).response()
            return JSON(body, headers=headers)
        return serve

    def list_records(self, request: Request, resource: Resource, key: ApiKey) -> dict:
        limit, cursor, fields = _limit(request), _cursor(request), _fields(request, resource)
        modified_after, include_deleted = _timestamp(request, "modified_after"), _boolean(request, "include_deleted")
        with store.reader() as (conn, dialect):
            results, next_cursor = store.list_page(conn, dialect, resource, key.tenant, limit=limit, after_id=cursor,
                                                   modified_after=modified_after,
                                                   include_deleted=include_deleted, fields=fields)
        audit.spool("api_read", resource.path, records=len(results), tenant_id=key.tenant, who=f"api-key:{key.key_id}")
        return {"results": results, "next": next_cursor}

    def get_record(self, request: Request, resource: Resource, key: ApiKey) -> dict:
        fields, with_remote = _fields(request, resource), _boolean(request, "include_remote_data")
        record_id = request.path_params["id"]
        with store.reader() as (conn, dialect):
            record = store.get_record(conn, dialect, resource, key.tenant, record_id, fields)
            if record is None:
                raise ApiError(404, "not_found", f"no {resource.id_column} {record_id!r} in {resource.path}",
                               f"list {resource.path} for the ids this key can read")
            remote = store.remote_data(conn, dialect, self.lineage, resource, record) if with_remote else None
        selected = store.selected_columns(resource, fields)
        out = {c: record[c] for c in selected}
        if with_remote:
            out["remote_data"] = remote
        audit.spool("api_read", f"{resource.path}/{record_id}", records=1, tenant_id=key.tenant,
                    who=f"api-key:{key.key_id}", remote_data=with_remote)
        return out

    def subscribers_endpoint(self) -> Callable[[Request], Awaitable[Response]]:
        """GET (list), POST (add: the secret is in this answer only) and DELETE of the key's tenant's
        subscribers of outbound change events."""
        async def serve(request: Request) -> Response:
            try:
                key, headers = self.authorise(request, EVENTS_SCOPE, EVENTS_PATH)
                body = await request.body() if request.method == "POST" else b""
                status, content = await run_in_threadpool(events_api.handle, request.method,
                                                          request.path_params.get("id"), body, key.tenant)
            except ApiError as exc:
                return exc.response()
            except events_api.Refused as exc:
                return ApiError(exc.status, exc.code, exc.message, exc.hint).response()
            if content is None:
                return Response(status_code=status, headers=headers)
            return JSON(content, status_code=status, headers=headers)
        return serve

    def routes(self) -> list[Route]:
        subscribers = self.subscribers_endpoint()
        routes = [Route("/openapi.json", self.openapi),
                  Route(EVENTS_PATH, subscribers, methods=["GET", "POST"]),
                  Route(EVENTS_PATH + "/{id}", subscribers, methods=["DELETE"])]
        for resource in RESOURCES:
            routes.append(Route(resource.path, self.endpoint(resource, self.list_records)))
            routes.append(Route(resource.path + "/{id}", self.endpoint(resource, self.get_record)))
        return routes

    async def openapi(self, request: Request) -> Response:
        return JSON(document())


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "error")
    hint = "the resources are listed in /openapi.json" if status == 404 else None
    headers = dict(getattr(exc, "headers", None) or {})  # e.g. `Allow` on a 405
    return ApiError(status, code, f"{request.method} {request.url.path}: {exc.detail}", hint,
                    headers=headers).response()


def create_app(keys: KeyRing | None = None, limiter: RateLimiter | None = None) -> Starlette:
    api = ReadApi(keys, limiter)
    return Starlette(routes=api.routes(), exception_handlers={HTTPException: _http_error})
