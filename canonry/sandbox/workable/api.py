"""Workable SPI v3 simulator (API notes: sources/workable/README.md).

Served under `/spi/v3` (the real host is `https://<subdomain>.workable.com/spi/v3`):
`/jobs` (`state`, `limit`, `since_id`, `max_id`, `created_after`, `updated_after`), `/jobs/{shortcode}`,
`/candidates` (`shortcode`, `stage`, `email`, the same paging and time filters), `/candidates/{id}`,
`/stages`, `/members` (`limit`, `since_id`), `/departments` (a bare array, not paged) and `/events`
(`type`, `candidate_id`, `limit`, `since_id`). Lists answer `{<object>: [...], paging: {next}}` where `next`
is the full URL of the next page (the same query with `since_id` = the first id not returned); `paging`
is absent on the last page. Results are in id order; `limit` defaults to 50 and is capped at 100; the
time filters are ISO-8601 and exclusive ("created/updated after"); a malformed value is 400 `{error}`.

Auth: `Authorization: Bearer <access token>` (an account token; OAuth apps and partner tokens use the same
header). No or an unknown token: 401 `{"error": "Not authorized"}`. Rate limit: 10 requests per 10-second
interval for an account token; every answer carries `X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining` and
`X-Rate-Limit-Reset` (epoch seconds of the next interval); over the limit: 429 with `Retry-After`.

Data model (lazily generated from (seed, index)): a Workable candidate belongs to exactly one job (the
same person applying twice is two candidates), sits in one stage of the account's pipeline and may be
disqualified. Jobs sit in one department (`department_hierarchy` up to the top). Events are interviews,
calls and meetings of one candidate with members. Nothing is hard-deleted: the control endpoint's
`delete` disqualifies a candidate, archives a job, cancels an event and deactivates a member
(`control.py`); `truth()` therefore never reports `deleted`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.datagen import DEPARTMENTS, Faker
from canonry.sandbox.engine import RateWindow, SandboxState, bearer_token, json_response
from canonry.sandbox.kit import SimulatorBase, guarded
from canonry.sandbox.workable.control import WorkableControl
from canonry.sandbox.workable.data import (
    ACCOUNT_TOKEN_LIMIT,
    API_PREFIX,
    PAGE_DEFAULT,
    PAGE_MAX,
    RATE_INTERVAL_SECONDS,
    STAGES,
    WorkableData,
    make_id,
    parse_id,
    shortcode,
)
from canonry.sandbox.workable.subscriptions import WorkableSubscriptions

LIST_KEYS = {"jobs": "jobs", "candidates": "candidates", "members": "members", "events": "events"}


class BadRequest(ValueError):
    """A query parameter the API refuses (answered 400 with its message)."""


class WorkableSimulator(WorkableData, WorkableControl, WorkableSubscriptions, SimulatorBase):
    slug = "workable"

    def __init__(self, state: SandboxState, rate_limit: int = ACCOUNT_TOKEN_LIMIT,
                 rate_interval: float = RATE_INTERVAL_SECONDS) -> None:
        self.state = state
        scale = max(1, state.scale)
        self.sizes = {"candidates": scale, "jobs": max(3, min(300, scale // 10)),
                      "members": max(4, min(200, scale // 20)), "events": scale // 2,
                      "departments": len(DEPARTMENTS) + 4, "stages": len(STAGES)}
        self.fake = {name: Faker(state.seed, f"workable.{name}") for name in self.sizes}
        factories: dict[str, Callable[[int], dict]] = {
            "candidates": self._candidate, "jobs": self._job, "members": self._member, "events": self._event,
            "departments": self._department,
            "stages": lambda i: {"slug": STAGES[i][0], "name": STAGES[i][1], "kind": STAGES[i][2]},
        }
        self.collections: dict[str, Collection] = {}
        for name, factory in factories.items():
            if name == "stages":
                codec = (lambda i: STAGES[i][0], lambda slug: next((i for i, s in enumerate(STAGES)
                                                                    if s[0] == slug), None))
            else:
                codec = (lambda i, n=name: make_id(n, i), parse_id(name))
            self.collections[name] = Collection(name, self.sizes[name], factory, *codec)
        self.window = RateWindow(rate_limit, rate_interval)
        self.init_subscriptions()

    # -- HTTP ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        p = API_PREFIX
        return [
            Route(f"{p}/jobs", self.list_jobs, methods=["GET"]),
            Route(f"{p}/jobs/{{shortcode}}", self.get_job, methods=["GET"]),
            Route(f"{p}/candidates", self.list_candidates, methods=["GET"]),
            Route(f"{p}/candidates/{{id}}", self.get_candidate, methods=["GET"]),
            Route(f"{p}/members", self.list_members, methods=["GET"]),
            Route(f"{p}/events", self.list_events, methods=["GET"]),
            Route(f"{p}/stages", self.list_stages, methods=["GET"]),
            Route(f"{p}/departments", self.list_departments, methods=["GET"]),
            Route(f"{p}/subscriptions", self.create_subscription, methods=["POST"]),
            Route(f"{p}/subscriptions/{{id}}", self.delete_subscription, methods=["DELETE"]),
        ]

    def error_response(self, status: int, message: str, kind: str) -> Response:
        headers = {"Retry-After": "1"} if status == 429 else None
        return json_response({"error": message}, status, headers=headers)

    def guard(self, request: Request, **options) -> tuple[Response | None, dict[str, str]]:
        token = bearer_token(request)
        if not self.state.is_valid_token(token):
            return self.error_response(401, "Not authorized", "unauthorized"), {}
        if not self.state.rate_limits:
            return None, {}
        allowed, remaining = self.window.take()
        headers = {"X-Rate-Limit-Limit": str(self.window.limit), "X-Rate-Limit-Remaining": str(remaining),
                   "X-Rate-Limit-Reset": str(self._reset_epoch())}
        if not allowed:
            wait = max(1, math.ceil(self._reset_epoch() - time.time()))
            return json_response({"error": "Too many requests"}, 429,
                                 headers={**headers, "Retry-After": str(wait)}), {}
        return None, headers

    def _reset_epoch(self) -> int:
        """Epoch seconds when the oldest request of the window leaves it (the next free slot)."""
        with self.window.lock:
            oldest = self.window.stamps[0] if self.window.stamps else time.monotonic()
        return math.ceil(time.time() + max(0.0, oldest + self.window.interval - time.monotonic()))

    # -- lists ----------------------------------------------------------------------------------
    @guarded
    async def list_jobs(self, request: Request, headers: dict[str, str]) -> Response:
        state = request.query_params.get("state")
        return self._list(request, headers, "jobs",
                          lambda entry: state is None or entry.record["state"] == state)

    @guarded
    async def list_candidates(self, request: Request, headers: dict[str, str]) -> Response:
        q = request.query_params
        code, stage, email = q.get("shortcode"), q.get("stage"), q.get("email")

        def keep(entry: Entry) -> bool:
            record = entry.record
            return ((code is None or shortcode(record["_job"]) == code)
                    and (stage is None or record["stage"] == stage)
                    and (email is None or record["email"].lower() == email.lower()))
        return self._list(request, headers, "candidates", keep)

    @guarded
    async def list_members(self, request: Request, headers: dict[str, str]) -> Response:
        return self._list(request, headers, "members")

    @guarded
    async def list_events(self, request: Request, headers: dict[str, str]) -> Response:
        q = request.query_params
        kind, candidate = q.get("type"), q.get("candidate_id")
        return self._list(request, headers, "events", lambda entry: (
            (kind is None or entry.record["type"] == kind)
            and (candidate is None or make_id("candidates", entry.record["_candidate"]) == candidate)))

    @guarded
    async def list_stages(self, request: Request, headers: dict[str, str]) -> Response:
        stages = self.collections["stages"]
        return json_response({"stages": [self.render("stages", i, e) for i, e in stages.iter_alive()]},
                             headers=headers)

    @guarded
    async def list_departments(self, request: Request, headers: dict[str, str]) -> Response:
        departments = self.collections["departments"]
        return json_response([self.render("departments", i, e) for i, e in departments.iter_alive()],
                             headers=headers)

    # -- single reads -----------------------------------------------------------------------------
    @guarded
    async def get_job(self, request: Request, headers: dict[str, str]) -> Response:
        code = request.path_params["shortcode"]
        jobs = self.collections["jobs"]
        for index, entry in jobs.iter_alive():
            if shortcode(index) == code:
                body = self.render("jobs", index, entry)
                body["description"] = f"<p>We are hiring a {entry.record['title']}.</p>"
                body["requirements"] = "<p>Experience that fits the role.</p>"
                body["benefits"] = "<p>Remote days, learning budget.</p>"
                body["employment_type"] = "Full-time"
                return json_response(body, headers=headers)
        return json_response({"error": "Not found"}, 404, headers=headers)

    @guarded
    async def get_candidate(self, request: Request, headers: dict[str, str]) -> Response:
        candidates = self.collections["candidates"]
        index = candidates.index_of(request.path_params["id"])
        if index is None:
            return json_response({"error": "Not found"}, 404, headers=headers)
        return json_response({"candidate": self.candidate_details(index)}, headers=headers)

    def candidate_details(self, index: int) -> dict:
        """A candidate as `/candidates/{id}` (and a webhook) renders it: the list's fields and the profile's."""
        body = self.render("candidates", index, self.collections["candidates"].get(index))
        body.update({"tags": [], "summary": None, "cover_letter": None, "image_url": None,
                     "social_profiles": [], "education_entries": [], "experience_entries": [],
                     "skills": [], "answers": [], "resume_url": None,
                     "location": {"location_str": body["address"]} if body["address"] else None})
        return body

    # -- paging -----------------------------------------------------------------------------------
    def _list(self, request: Request, headers: dict[str, str], kind: str,
              keep: Callable[[Entry], bool] | None = None) -> Response:
        try:
            limit, since_index, max_index, created_after, updated_after = self._paging(request, kind)
        except BadRequest as exc:
            return json_response({"error": str(exc)}, 400, headers=headers)
        collection = self.collections[kind]
        rows: list[tuple[int, Entry]] = []
        for index, entry in self._scan(collection, since_index, max_index):
            if created_after is not None and entry.created_at <= created_after:
                continue
            if updated_after is not None and entry.modified_at <= updated_after:
                continue
            if keep is not None and not keep(entry):
                continue
            rows.append((index, entry))
            if len(rows) > limit:
                break
        body: dict = {LIST_KEYS[kind]: [self.render(kind, i, e) for i, e in rows[:limit]]}
        if len(rows) > limit:
            query = {k: v for k, v in request.query_params.items() if k != "since_id"}
            query.update(limit=str(limit), since_id=collection.id_of(rows[limit][0]))
            body["paging"] = {"next": f"{self.state.base_url}{request.url.path}?{urlencode(query)}"}
        return json_response(body, headers=headers)

    @staticmethod
    def _scan(collection: Collection, since_index: int, max_index: int | None) -> Iterator[tuple[int, Entry]]:
        for index, entry in collection.iter_alive(since_index):
            if max_index is not None and index > max_index:
                return
            yield index, entry

    def _paging(self, request: Request, kind: str) -> tuple[int, int, int | None, datetime | None, datetime | None]:
        q = request.query_params
        raw_limit = q.get("limit", str(PAGE_DEFAULT))
        if not raw_limit.isdigit() or int(raw_limit) < 1:
            raise BadRequest(f"limit must be a positive integer, got {raw_limit!r}")
        limit = min(int(raw_limit), PAGE_MAX)
        since_index = self._id_bound(q.get("since_id"), kind, "since_id", 0)
        max_index = self._id_bound(q.get("max_id"), kind, "max_id", None)
        return limit, since_index, max_index, _time(q.get("created_after"), "created_after"), \
            _time(q.get("updated_after"), "updated_after")

    def _id_bound(self, value: str | None, kind: str, name: str, default: int | None) -> int | None:
        """`since_id` / `max_id` compare ids (ours sort like their indexes); an id that is not one is 400."""
        if value is None:
            return default
        index = parse_id(kind)(value)
        if index is None:
            raise BadRequest(f"{name} {value!r} is not a valid id")
        return index


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date-time, got {value!r}") from None
    if moment.tzinfo is None:
        raise BadRequest(f"{name} must carry a time zone (e.g. 2025-01-31T12:00:00Z), got {value!r}")
    return moment
