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

import base64
import binascii
import hashlib
import hmac
import json
import math
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import requests
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.datagen import CITIES, DEPARTMENTS, JOB_TITLES, Faker
from canonry.sandbox.engine import RateWindow, SandboxState, bearer_token, json_response, utcnow
from canonry.sandbox.oauth_server import OAuthClient, OAuthError, OAuthServer

PER_PAGE_MAX = 500
PER_PAGE_DEFAULT = 100
TOKEN_TTL_SECONDS = 3600
RATE_LIMIT_WINDOW_SECONDS = 10.0
DEFAULT_CLIENT_ID = "canonry-greenhouse-client"
DEFAULT_CLIENT_SECRET = "sandbox-greenhouse-client-secret"
DEFAULT_WEBHOOK_SECRET = "sandbox-greenhouse-webhook-secret"
STAGES_PER_JOB = 5
STAGE_NAMES = ("Application Review", "Phone Screen", "Technical Interview", "Onsite", "Offer")

# resource -> id offset (Greenhouse ids are integers; each resource gets its own range)
OFFSETS: dict[str, int] = {
    "candidates": 10_000_000, "applications": 20_000_000, "jobs": 30_000_000, "job_stages": 40_000_000,
    "scheduled_interviews": 50_000_000, "offers": 60_000_000, "departments": 70_000_000,
    "offices": 80_000_000, "users": 90_000_000,
}
RESOURCES: tuple[str, ...] = tuple(OFFSETS)
# Parent filters each list accepts (v3 "parent resource" filters): param -> record field.
PARENT_FILTERS: dict[str, dict[str, str]] = {
    "applications": {"candidate_ids": "candidate_id", "job_ids": "job_id"},
    "job_stages": {"job_ids": "job_id"},
    "scheduled_interviews": {"application_ids": "application_id"},
    "offers": {"application_ids": "application_id", "candidate_ids": "candidate_id", "job_ids": "job_id"},
}
# (resource, action) -> webhook event (providers.md §3.4); mutations without an event send nothing.
WEBHOOK_EVENTS: dict[tuple[str, str], str] = {
    ("candidates", "update"): "update_candidate",
    ("candidates", "delete"): "delete_candidate",
    ("applications", "create"): "new_candidate_application",
    ("applications", "update"): "application_updated",
    ("applications", "delete"): "delete_application",
    ("jobs", "create"): "job_created",
    ("jobs", "update"): "job_updated",
    ("jobs", "delete"): "job_deleted",
    ("offers", "create"): "offer_created",
    ("offers", "update"): "offer_updated",
    ("offers", "delete"): "offer_deleted",
    ("scheduled_interviews", "delete"): "interview_deleted",
    ("job_stages", "delete"): "job_interview_stage_deleted",
    ("departments", "delete"): "department_deleted",
    ("offices", "delete"): "office_deleted",
}
FILTER_OPERATORS = ("gte", "gt", "lte", "lt")
APPLICATION_STATUSES = ("active", "active", "active", "rejected", "hired", "converted")
OFFER_STATUSES = ("unresolved", "accepted", "rejected", "deprecated")
INTERVIEW_STATUSES = ("scheduled", "awaiting_feedback", "complete")
JOB_STATUSES = ("open", "open", "closed", "draft")
PERMISSION_LEVELS = ("basic", "basic", "job_admin", "interviewer", "site_admin")
SOURCES = ((1001, "LinkedIn"), (1002, "Referral"), (1003, "Company website"), (1004, "Indeed"), (1005, "Agency"))
REJECTION_REASONS = ((2001, "Lacking skill(s)/qualification(s)"), (2002, "Hired another candidate"),
                     (2003, "Withdrew"), (2004, "Other"))
TAGS = ("python", "remote", "senior", "referral", "returning", "priority")


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def sign(secret: str, body: bytes) -> str:
    """The `Signature` header value Greenhouse sends: `sha256 <hex HMAC-SHA256(secret, raw body)>`."""
    return "sha256 " + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(action: str, payload: dict) -> bytes:
    """The envelope, JSON with unicode and HTML-significant characters escaped (as Greenhouse signs it)."""
    text = json.dumps({"action": action, "payload": payload}, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


@dataclass(frozen=True)
class TimeFilter:
    field: str  # created_at | updated_at
    op: str
    at: datetime

    def matches(self, value: datetime) -> bool:
        return {"gte": value >= self.at, "gt": value > self.at, "lte": value <= self.at,
                "lt": value < self.at}[self.op]


class GreenhouseSimulator:
    slug = "greenhouse"

    def __init__(self, state: SandboxState, burst_limit: int = 50, webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
                 webhook_url: str | None = None) -> None:
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
        self.collections: dict[str, Collection] = {
            name: Collection(name, self.sizes[name], factories[name], self._id_of(OFFSETS[name]),
                             self._parse_id(OFFSETS[name]))
            for name in RESOURCES
        }
        self.burst = RateWindow(burst_limit, RATE_LIMIT_WINDOW_SECONDS)
        self.oauth = OAuthServer(state, access_ttl=TOKEN_TTL_SECONDS, token_prefix="gh")
        self.oauth.register(OAuthClient(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, ()))
        self.webhook_secret = webhook_secret
        if webhook_url:
            state.webhook_url = webhook_url
        self.webhook_deliveries: list[dict] = []

    # -- ids ------------------------------------------------------------------------------------
    @staticmethod
    def _id_of(offset: int) -> Callable[[int], str]:
        return lambda index: str(offset + index + 1)

    @staticmethod
    def _parse_id(offset: int) -> Callable[[str], int | None]:
        def parse(remote_id: str) -> int | None:
            return int(remote_id) - offset - 1 if str(remote_id).isdigit() else None
        return parse

    def _ref(self, name: str, index: int) -> int:
        return OFFSETS[name] + index + 1

    # -- data (record i is a pure function of seed and i) ---------------------------------------
    def _user_ref(self, fake: Faker, index: int, field: str) -> int:
        return self._ref("users", fake.number(index, field, self.sizes["users"]))

    def _candidate(self, index: int) -> dict:
        fake = self.faker["candidates"]
        first, last = fake.person(index)
        city, _, country, _ = fake.city(index)
        emails = [{"value": fake.email(index, first, last), "type": fake.pick(index, "email_type",
                                                                                ("personal", "work", "other"))}]
        if fake.chance(index, "second_email", 30):
            emails.append({"value": f"{first.lower()}.{index}@work.example.org", "type": "work"})
        phones = [{"value": fake.phone(index), "type": fake.pick(index, "phone_type",
                                                                  ("home", "work", "mobile", "skype", "other"))}]
        return {
            "first_name": first, "last_name": last, "company": fake.company(index),
            "title": fake.pick(index, "title", JOB_TITLES), "is_private": fake.chance(index, "private", 10),
            "can_email": not fake.chance(index, "no_email", 15),
            "last_activity_at": None,
            "email_addresses": emails, "phone_numbers": phones,
            "addresses": [{"value": f"{fake.street(index)}, {city}, {country}", "type": "home"}],
            "website_addresses": ([{"value": f"https://{last.lower().replace(' ', '')}{index}.example.net",
                                    "type": "personal"}] if fake.chance(index, "site", 40) else []),
            "social_media_addresses": [],
            "tags": sorted({fake.pick(index, f"tag{n}", TAGS) for n in range(fake.number(index, "tags", 3))}),
            "recruiter_id": self._user_ref(fake, index, "recruiter"),
            "coordinator_id": self._user_ref(fake, index, "coordinator"),
            "custom_fields": {"desired_salary": str(50_000 + fake.number(index, "salary", 100) * 1000)},
        }

    def _application_job_index(self, index: int) -> int:
        return self.faker["applications"].number(index, "job", self.sizes["jobs"])

    def _application(self, index: int) -> dict:
        fake = self.faker["applications"]
        job_index = self._application_job_index(index)
        status = fake.pick(index, "status", APPLICATION_STATUSES)
        stage_index = job_index * STAGES_PER_JOB + fake.number(index, "stage", STAGES_PER_JOB)
        source_id, source_name = fake.pick(index, "source", SOURCES)
        reason = fake.pick(index, "reason", REJECTION_REASONS) if status == "rejected" else None
        return {
            "candidate_id": self._ref("candidates", index % self.sizes["candidates"]),
            "job_id": self._ref("jobs", job_index),
            "prospect": False,
            "status": status,
            "current_stage_id": self._ref("job_stages", stage_index) if status == "active" else None,
            "source": {"id": source_id, "public_name": source_name},
            "credited_to_id": self._user_ref(fake, index, "credited"),
            "rejection_reason": {"id": reason[0], "name": reason[1]} if reason else None,
            "_rejected_offset_days": 3 + fake.number(index, "rejected_days", 20) if reason else None,
            "job_post_id": None,
        }

    def _job(self, index: int) -> dict:
        fake = self.faker["jobs"]
        status = fake.pick(index, "status", JOB_STATUSES)
        departments = [self._ref("departments", fake.number(index, "department", self.sizes["departments"]))]
        offices = sorted({self._ref("offices", fake.number(index, f"office{n}", self.sizes["offices"]))
                          for n in range(1 + fake.number(index, "offices", 2))})
        return {
            "name": f"{fake.pick(index, 'title', JOB_TITLES)} {index}",
            "requisition_id": f"REQ-{1000 + index}",
            "notes": f"<p>{fake.words(index, 'notes', 5)}</p>",
            "confidential": fake.chance(index, "confidential", 10),
            "status": status,
            "is_template": False,
            "department_ids": departments,
            "office_ids": offices,
            "hiring_manager_ids": [self._user_ref(fake, index, "manager")],
            "recruiter_ids": sorted({self._user_ref(fake, index, "recruiter"),
                                     self._user_ref(fake, index, "recruiter2")}),
            "coordinator_ids": [self._user_ref(fake, index, "coordinator")],
            "_open": status != "draft",
            "_closed": status == "closed",
        }

    def _job_stage(self, index: int) -> dict:
        job_index, order = divmod(index, STAGES_PER_JOB)
        return {"job_id": self._ref("jobs", job_index % self.sizes["jobs"]), "name": STAGE_NAMES[order],
                "sort_order": order, "active": True}

    def _interview(self, index: int) -> dict:
        fake = self.faker["scheduled_interviews"]
        app_index = (index * 7) % self.sizes["applications"]
        job_index = self._application_job_index(app_index)
        stage_index = job_index * STAGES_PER_JOB + 1 + fake.number(index, "stage", STAGES_PER_JOB - 2)
        interviewers = sorted({self._user_ref(fake, index, f"interviewer{n}")
                               for n in range(1 + fake.number(index, "panel", 3))})
        return {
            "application_id": self._ref("applications", app_index),
            "job_stage_id": self._ref("job_stages", stage_index),
            "external_event_id": f"evt-{index}",
            "location": fake.pick(index, "location", ("Zoom", "Room 1", "Room 2", "Phone")),
            "video_conferencing_url": None,
            "status": fake.pick(index, "status", INTERVIEW_STATUSES),
            "organizer_id": self._user_ref(fake, index, "organizer"),
            "interviewers": [{"user_id": uid, "response_status": "accepted", "scorecard_id": None}
                             for uid in interviewers],
            "_start_offset_hours": 24 + fake.number(index, "start", 24 * 30),
            "_minutes": (30, 45, 60)[fake.number(index, "length", 3)],
        }

    def _offer(self, index: int) -> dict:
        fake = self.faker["offers"]
        app_index = (index * 3) % self.sizes["applications"]
        status = fake.pick(index, "status", OFFER_STATUSES)
        return {
            "application_id": self._ref("applications", app_index),
            "candidate_id": self._ref("candidates", app_index % self.sizes["candidates"]),
            "job_id": self._ref("jobs", self._application_job_index(app_index)),
            "version": 1 + fake.number(index, "version", 3),
            "status": status,
            "created_by_id": self._user_ref(fake, index, "creator"),
            "_sent": status != "unresolved" or fake.chance(index, "sent", 50),
            "_resolved": status != "unresolved",
            "_start_days": 14 + fake.number(index, "start", 60),
        }

    def _department(self, index: int) -> dict:
        parent = None if index < 3 else self._ref("departments", index % 3)
        return {"name": DEPARTMENTS[index % len(DEPARTMENTS)] + ("" if index < len(DEPARTMENTS) else f" {index}"),
                "parent_id": parent, "external_id": f"dept-{index}"}

    def _office(self, index: int) -> dict:
        city, state_code, country, _ = CITIES[index % len(CITIES)]
        return {"name": city if index < len(CITIES) else f"{city} {index}",
                "location": {"name": f"{city}, {state_code}, {country}"},
                "parent_id": None, "primary_contact_user_id": self._ref("users", index % self.sizes["users"]),
                "external_id": f"office-{index}"}

    def _user(self, index: int) -> dict:
        fake = self.faker["users"]
        first, last = fake.person(index)
        email = fake.email(index, first, last, "hiring.example.com")
        level = "site_admin" if index == 0 else fake.pick(index, "level", PERMISSION_LEVELS)
        return {"first_name": first, "last_name": last, "name": f"{first} {last}", "primary_email_address": email,
                "emails": [email], "disabled": fake.chance(index, "disabled", 10) and index != 0,
                "site_admin": level == "site_admin", "permission_level": level,
                "employee_id": f"E{1000 + index}"}

    # -- rendering ------------------------------------------------------------------------------
    def render(self, name: str, index: int, entry: Entry) -> dict:
        """The v3 JSON of one record: its id, timestamps, and fields (private `_…` keys resolved)."""
        record = entry.record
        created = entry.created_at
        body: dict = {"id": int(self.collections[name].id_of(index))}
        for key, value in record.items():
            if not key.startswith("_"):
                body[key] = value
        if name == "candidates":
            body["last_activity_at"] = iso(entry.modified_at)
        elif name == "applications":
            body["applied_at"] = iso(created)
            body["last_activity_at"] = iso(entry.modified_at)
            days = record.get("_rejected_offset_days")
            body["rejected_at"] = iso(created + timedelta(days=days)) if days else None
        elif name == "jobs":
            body["opened_at"] = iso(created + timedelta(days=1)) if record.get("_open") else None
            body["closed_at"] = iso(created + timedelta(days=20)) if record.get("_closed") else None
        elif name == "scheduled_interviews":
            start = created + timedelta(hours=record["_start_offset_hours"])
            body["start_at"] = iso(start)
            body["end_at"] = iso(start + timedelta(minutes=record["_minutes"]))
        elif name == "offers":
            body["sent_on"] = (created + timedelta(days=1)).date().isoformat() if record.get("_sent") else None
            body["resolved_at"] = iso(created + timedelta(days=5)) if record.get("_resolved") else None
            body["starts_on"] = (created + timedelta(days=record["_start_days"])).date().isoformat()
        body["created_at"] = iso(created)
        body["updated_at"] = iso(entry.modified_at)
        return body

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

    def _guard(self, request: Request) -> tuple[Response | None, dict[str, str]]:
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
            Route("/v3/{resource}", self.list_resource, methods=["GET"]),
            Route("/v3/{resource}/{record_id}", self.get_resource, methods=["GET"]),
        ]

    async def token(self, request: Request) -> Response:
        # application/x-www-form-urlencoded, parsed here (no python-multipart dependency)
        form = dict(parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True))
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return json_response({"error": "invalid_client",
                                  "error_description": "client authentication uses HTTP Basic"}, 401)
        try:
            client_id, _, client_secret = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return json_response({"error": "invalid_client", "error_description": "malformed Basic header"}, 401)
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

    async def get_resource(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        name = request.path_params["resource"]
        if name not in self.collections:
            return json_response({"message": f"Resource not found: {name}"}, 404, headers=headers)
        collection = self.collections[name]
        index = collection.index_of(request.path_params["record_id"])
        if index is None or not collection.is_alive(index):
            return json_response({"message": f"Resource not found: {name} {request.path_params['record_id']}"},
                                 404, headers=headers)
        return json_response(self.render(name, index, collection.get(index)), headers=headers)

    async def list_resource(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        name = request.path_params["resource"]
        if name not in self.collections:
            return json_response({"message": f"Resource not found: {name}"}, 404, headers=headers)
        try:
            query = self._query(name, request)
            page, next_position = self._page(name, query)
        except ApiError as exc:
            return self._api_error(exc, headers)
        if next_position is not None:
            cursor = self._encode_cursor({**query, "after": next_position})
            headers["Link"] = f'<{self.state.base_url}/v3/{name}?cursor={cursor}>; rel="next"'
        return json_response(page, headers=headers)

    # -- list mechanics -------------------------------------------------------------------------
    @staticmethod
    def _encode_cursor(payload: dict) -> str:
        raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _decode_cursor(cursor: str) -> dict:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise ApiError(400, "Invalid cursor: take it unchanged from the Link header's rel=\"next\" URL.") \
                from None
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

    # -- control --------------------------------------------------------------------------------
    def mutate(self, object_name: str, action: str, count: int, rng: random.Random,
               ids: list[str] | None) -> list[str]:
        collection = self.collections[object_name]
        done: list[str] = []
        events: list[tuple[str, dict]] = []
        if action == "create":
            for _ in range(count):
                index = collection.create(self._fresh(object_name), utcnow())
                done.append(collection.id_of(index))
                events.append((action, self.render(object_name, index, collection.get(index))))
        else:
            indexes = collection.targets(action, count, rng, ids)
            for index in indexes:
                now = utcnow()  # every change gets its own time, as real edits do
                if action == "update":
                    collection.update(index, lambda rec, i=index, t=now: self._changed(object_name, rec, i, t), now)
                elif action == "delete":
                    if not collection.is_alive(index):
                        continue
                    body = self.render(object_name, index, collection.get(index))
                    collection.delete(index, now)
                    if object_name == "candidates":
                        body = {"person": {**body, "deleted_application_ids": self._cascade(body["id"], now)}}
                    events.append((action, body))
                    done.append(collection.id_of(index))
                    continue
                elif action == "restore":
                    collection.restore(index, now)
                events.append((action, self.render(object_name, index, collection.get(index))))
                done.append(collection.id_of(index))
        for event_action, payload in events:
            self._send_webhook(object_name, event_action, payload)
        return done

    def _cascade(self, candidate_id: int, now: datetime) -> list[int]:
        """Deleting a candidate deletes its applications, silently (no webhook, no feed)."""
        applications = self.collections["applications"]
        candidate_index = candidate_id - OFFSETS["candidates"] - 1
        size = self.sizes["candidates"]
        indexes = set(range(candidate_index, applications.base_size, size)) if candidate_index < size else set()
        indexes |= {i for i, e in applications.changes.items() if e.record.get("candidate_id") == candidate_id}
        deleted = []
        for index in sorted(indexes):
            entry = applications.get(index)
            if entry.deleted_at is None and entry.record.get("candidate_id") == candidate_id:
                applications.delete(index, now)
                deleted.append(int(applications.id_of(index)))
        return deleted

    def _fresh(self, object_name: str) -> Callable[[int], dict]:
        base_size = self.sizes[object_name]
        factory = self.collections[object_name].factory

        def make(index: int) -> dict:
            record = json.loads(json.dumps(factory(index % base_size)))
            if object_name == "candidates":
                first, last = self.faker["candidates"].person(index)
                record.update(first_name=first, last_name=f"{last} New{index}")
                record["email_addresses"] = [{"value": self.faker["candidates"].email(index, first, last),
                                              "type": "personal"}]
            elif object_name == "jobs":
                record["name"] = f"New job {index}"
            elif object_name in ("departments", "offices"):
                record["name"] = f"{record['name']} {index}"
            elif object_name == "users":
                first, last = self.faker["users"].person(index)
                email = self.faker["users"].email(index, first, last, "hiring.example.com")
                record.update(first_name=first, last_name=last, name=f"{first} {last}",
                              primary_email_address=email, emails=[email])
            return record
        return make

    @staticmethod
    def _changed(object_name: str, record: dict, index: int, now: datetime) -> dict:
        stamp = now.strftime("%H%M%S%f")
        if object_name == "candidates":
            record["title"] = f"updated {stamp}"
        elif object_name == "applications":
            record["status"] = "hired" if record["status"] != "hired" else "active"
            record["current_stage_id"] = None if record["status"] == "hired" else record["current_stage_id"]
        elif object_name == "jobs":
            record["name"] = f"updated {stamp}"
        elif object_name == "job_stages":
            record["name"] = f"updated {stamp}"
        elif object_name == "scheduled_interviews":
            record["location"] = f"updated {stamp}"
        elif object_name == "offers":
            record["version"] = record["version"] + 1
            record["status"] = "accepted"
            record["_sent"], record["_resolved"] = True, True
        elif object_name in ("departments", "offices"):
            record["name"] = f"updated {stamp}"
        elif object_name == "users":
            record["last_name"] = f"updated {stamp}"
            record["name"] = f"{record['first_name']} {record['last_name']}"
        return record

    def truth(self, object_name: str) -> list[dict]:
        collection = self.collections[object_name]
        out = []
        for index in range(collection.size):
            entry = collection.get(index)
            out.append({"id": collection.id_of(index), "deleted": entry.deleted_at is not None,
                        "updated_at": iso(entry.modified_at), "record": self.render(object_name, index, entry)})
        return out

    # -- webhooks -------------------------------------------------------------------------------
    def _send_webhook(self, object_name: str, action: str, payload: dict) -> None:
        event = WEBHOOK_EVENTS.get((object_name, action))
        url = self.state.webhook_url
        if event is None or not url:
            return
        body = webhook_body(event, payload if object_name == "candidates" and action == "delete"
                            else {object_name.rstrip("s") if object_name != "scheduled_interviews"
                                  else "interview": payload})
        event_id = str(uuid.uuid4())
        headers = {"Content-Type": "application/json", "Signature": sign(self.webhook_secret, body),
                   "Greenhouse-Event-ID": event_id, "User-Agent": "Greenhouse-Webhooks (sandbox)"}
        delivery = {"event_id": event_id, "action": event, "url": url, "status": None}
        try:
            delivery["status"] = requests.post(url, data=body, headers=headers, timeout=5).status_code
        except requests.RequestException as exc:
            delivery["error"] = type(exc).__name__
        self.webhook_deliveries.append(delivery)
