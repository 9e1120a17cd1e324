"""Ashby API simulator (shared/reference/providers.md §5).

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

import base64
import binascii
import hashlib
import hmac
import json
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.datagen import CITIES, DEPARTMENTS, JOB_TITLES, Faker
from canonry.sandbox.engine import RateWindow, SandboxState, json_response, utcnow

PAGE_MAX = 100
DEFAULT_WEBHOOK_SECRET = "sandbox-ashby-webhook-secret"
SYNC_TOKEN_TTL = timedelta(days=7)
STAGES_PER_PLAN = (("Application Review", "PreInterviewScreen"), ("Phone Screen", "Active"),
                   ("Onsite", "Active"), ("Offer", "Offer"), ("Hired", "Hired"))
PLANS = ("Engineering Interview Plan", "Go-To-Market Interview Plan", "General Interview Plan")
ARCHIVE_REASONS = (("Not a fit", "RejectedByOrganization"), ("Position filled", "RejectedByOrganization"),
                   ("Accepted other offer", "RejectedByCandidate"), ("Withdrew", "Withdrawn"),
                   ("Hired", "Hired"))
SOURCES = (("LinkedIn", "Sourced"), ("Referral", "Referral"), ("Company website", "Inbound"),
           ("Job board", "Inbound"), ("Agency", "Agency"), ("Event", "Event"))
GLOBAL_ROLES = ("Organization Admin", "Elevated Access", "Limited Access", "Interviewer", "External Recruiter")
APPLICATION_STATUSES = ("Active", "Active", "Active", "Active", "Active", "Active", "Archived", "Archived",
                        "Hired", "Lead")
JOB_STATUSES = ("Open", "Open", "Open", "Closed", "Draft", "Archived")
SCHEDULE_STATUSES = ("Scheduled", "Scheduled", "WaitingOnFeedback", "Complete", "Complete", "NeedsScheduling")
OFFER_STATES = (("WaitingOnApprovalStart", "Created"), ("WaitingOnOfferApproval", "Pending"),
                ("WaitingOnCandidateResponse", "WaitingOnResponse"), ("CandidateAccepted", "Accepted"),
                ("CandidateRejected", "Declined"))
EMAIL_TYPES = ("Personal", "Personal", "Work", "Other")
PHONE_TYPES = ("Mobile", "Mobile", "Personal", "Work", "Other")
SOCIAL_TYPES = ("LinkedIn", "GitHub", "Twitter", "Website")
TAGS = ("Senior", "Remote", "Referral", "Silver medalist", "Diversity", "Re-engage")


@dataclass(frozen=True)
class ObjectSpec:
    name: str            # collection and raw table name
    endpoint: str        # the RPC method that lists it
    namespace: int       # distinguishes the UUIDs of different objects
    sync_token: bool     # the endpoint accepts `syncToken`
    archived_flag: str | None = None  # request flag that includes archived/deactivated records
    webhook: str | None = None        # webhook event prefix


SPECS: dict[str, ObjectSpec] = {s.name: s for s in (
    ObjectSpec("candidates", "candidate.list", 0x0C, True, webhook="candidate"),
    ObjectSpec("applications", "application.list", 0x0A, True, webhook="application"),
    ObjectSpec("jobs", "job.list", 0x0B, True, webhook="job"),
    ObjectSpec("interview_schedules", "interviewSchedule.list", 0x15, True, webhook="interviewSchedule"),
    ObjectSpec("offers", "offer.list", 0x0F, True, webhook="offer"),
    ObjectSpec("users", "user.list", 0x05, False, "includeDeactivated"),
    ObjectSpec("departments", "department.list", 0x0D, False, "includeArchived"),
    ObjectSpec("locations", "location.list", 0x07, False, "includeArchived"),
    ObjectSpec("archive_reasons", "archiveReason.list", 0x04, False, "includeArchived"),
    ObjectSpec("sources", "source.list", 0x50, False, "includeArchived"),
    ObjectSpec("interview_plans", "interviewPlan.list", 0x19, False, "includeArchived"),
    ObjectSpec("interview_stages", "interviewStage.list", 0x1A, False),
)}
ENDPOINTS = {s.endpoint: s for s in SPECS.values()}
# Objects whose archival is a flag on the record (canonical is_deleted).
ARCHIVE_FLAG_OBJECTS = ("departments", "locations", "archive_reasons", "sources", "interview_plans",
                        "interview_stages")


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _uuid_of(namespace: int) -> Callable[[int], str]:
    return lambda index: f"{namespace:08x}-a5b1-4c00-8000-{index:012x}"


def _parse_uuid(namespace: int) -> Callable[[str], int | None]:
    prefix = f"{namespace:08x}-a5b1-4c00-8000-"

    def parse(remote_id: str) -> int | None:
        if not remote_id.startswith(prefix) or len(remote_id) != len(prefix) + 12:
            return None
        try:
            return int(remote_id[len(prefix):], 16)
        except ValueError:
            return None
    return parse


def _encode_cursor(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict | None:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return data if isinstance(data, dict) else None
    except (ValueError, binascii.Error):
        return None


class AshbyError(Exception):
    """A logic error answered as HTTP 200 with `success: false`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class AshbySimulator:
    slug = "ashby"

    def __init__(self, state: SandboxState, rate_limit: int = 300, rate_interval: float = 10.0,
                 webhook_secret: str = DEFAULT_WEBHOOK_SECRET, incremental_page_cap: int = 50,
                 sync_token_ttl_seconds: float | None = None) -> None:
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
        self.collections: dict[str, Collection] = {
            name: Collection(name, self.sizes[name], factories[name], _uuid_of(spec.namespace),
                             _parse_uuid(spec.namespace))
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
        self.lock = threading.Lock()

    # -- ids ----------------------------------------------------------------------------------
    def id_of(self, name: str, index: int) -> str:
        return self.collections[name].id_of(index) if name in self.collections else _uuid_of(
            SPECS[name].namespace)(index)

    def _ref(self, name: str, index: int) -> str:
        return _uuid_of(SPECS[name].namespace)(index)

    # -- generated records (pure functions of seed and index) -----------------------------------
    def _user_brief(self, index: int) -> dict:
        first, last = self.faker["users"].person(index)
        return {"id": self._ref("users", index), "firstName": first, "lastName": last,
                "email": self.faker["users"].email(index, first, last, "ashby.example.com"),
                "globalRole": self.faker["users"].pick(index, "role", GLOBAL_ROLES), "isEnabled": True}

    def _source_brief(self, index: int) -> dict:
        title, kind = SOURCES[index]
        return {"id": self._ref("sources", index), "title": title, "isArchived": False,
                "sourceType": {"id": f"source-type-{kind.lower()}", "title": kind, "isArchived": False}}

    def _candidate(self, index: int) -> dict:
        fake = self.faker["candidates"]
        first, last = fake.person(index)
        emails = [{"value": fake.email(index, first, last), "type": fake.pick(index, "etype", EMAIL_TYPES),
                   "isPrimary": True}]
        if fake.chance(index, "email2", 30):
            emails.append({"value": fake.email(index, first, last, "work.example.org"), "type": "Work",
                           "isPrimary": False})
        phones = [] if fake.chance(index, "nophone", 15) else [
            {"value": fake.phone(index), "type": fake.pick(index, "ptype", PHONE_TYPES), "isPrimary": True}]
        city, region, country, _ = fake.city(index)
        tags = sorted({fake.number(index, f"tag{n}", len(TAGS)) for n in range(fake.number(index, "ntags", 3))})
        scale = self.sizes["candidates"]
        application_ids = [self._ref("applications", index)]
        if index + scale < self.sizes["applications"]:
            application_ids.append(self._ref("applications", index + scale))
        social = fake.pick(index, "social", SOCIAL_TYPES)
        return {
            "name": f"{first} {last}",
            "primaryEmailAddress": emails[0],
            "emailAddresses": emails,
            "primaryPhoneNumber": phones[0] if phones else None,
            "phoneNumbers": phones,
            "socialLinks": [{"url": f"https://{social.lower()}.example.com/{first.lower()}{index}", "type": social}],
            "tags": [{"id": f"tag-{t}", "title": TAGS[t], "isArchived": False} for t in tags],
            "position": fake.pick(index, "title", JOB_TITLES),
            "company": fake.company(index),
            "school": f"{fake.pick(index, 'school', ('MIT', 'ETH', 'Oxford', 'Waterloo', 'TU Berlin'))}",
            "applicationIds": application_ids,
            "resumeFileHandle": {"id": f"file-{index}", "name": "resume.pdf", "handle": f"h{index:x}"},
            "fileHandles": [],
            "customFields": [{"id": "cf-notice", "title": "Notice period",
                              "value": f"{fake.number(index, 'notice', 4) + 1} months"}],
            "profileUrl": f"https://app.ashbyhq.com/candidates/{self._ref('candidates', index)}",
            "source": self._source_brief(fake.number(index, "source", len(SOURCES))),
            "creditedToUser": self._user_brief(fake.number(index, "credit", self.sizes["users"])),
            "location": {"id": f"loc-{city.lower()}", "locationSummary": f"{city}, {country}",
                         "locationComponents": [{"type": "City", "name": city},
                                                {"type": "Region", "name": region},
                                                {"type": "Country", "name": country}]},
        }

    def _plan_of_job(self, job_index: int) -> int:
        return job_index % len(PLANS)

    def _stage_brief(self, plan: int, order: int) -> dict:
        title, kind = STAGES_PER_PLAN[order]
        return {"id": self._ref("interview_stages", plan * len(STAGES_PER_PLAN) + order), "title": title,
                "type": kind, "orderInInterviewPlan": order, "interviewPlanId": self._ref("interview_plans", plan)}

    def _application_parts(self, index: int) -> tuple[int, int, str, int]:
        """(candidate index, job index, status, stage order) of a base application."""
        fake = self.faker["applications"]
        candidate = index % self.sizes["candidates"]
        job = fake.number(index, "job", self.sizes["jobs"])
        status = fake.pick(index, "status", APPLICATION_STATUSES)
        order = {"Hired": len(STAGES_PER_PLAN) - 1, "Lead": 0}.get(
            status, fake.number(index, "stage", len(STAGES_PER_PLAN) - 1))
        return candidate, job, status, order

    def _application(self, index: int, candidate: int | None = None) -> dict:
        fake = self.faker["applications"]
        base_candidate, job, status, order = self._application_parts(index)
        candidate = base_candidate if candidate is None else candidate
        cand_first, cand_last = self.faker["candidates"].person(candidate)
        record = {
            "status": status,
            "customFields": [],
            "candidate": {"id": self._ref("candidates", candidate), "name": f"{cand_first} {cand_last}"},
            "currentInterviewStage": self._stage_brief(self._plan_of_job(job), order),
            "source": self._source_brief(fake.number(index, "source", len(SOURCES))),
            "archiveReason": None,
            "archivedAt": None,
            "job": {"id": self._ref("jobs", job), "title": self._job_title(job),
                    "locationId": self._ref("locations", self._job_location(job)),
                    "departmentId": self._ref("departments", self._job_department(job))},
            "creditedToUser": self._user_brief(fake.number(index, "credit", self.sizes["users"]))
            if fake.chance(index, "credited", 70) else None,
            "hiringTeam": [],
            "appliedViaJobPostingId": None,
        }
        if status == "Archived":
            reason = fake.number(index, "reason", len(ARCHIVE_REASONS) - 1)
            record["archiveReason"] = self._archive_reason_brief(reason)
            record["archivedAt"] = _iso(datetime(2025, 3, 1, tzinfo=UTC) + timedelta(minutes=index))
        return record

    def _archive_reason_brief(self, index: int) -> dict:
        text, kind = ARCHIVE_REASONS[index]
        return {"id": self._ref("archive_reasons", index), "text": text, "reasonType": kind, "isArchived": False}

    def _job_title(self, index: int) -> str:
        fake = self.faker["jobs"]
        return f"{fake.pick(index, 'level', ('Senior', 'Staff', 'Junior', 'Lead'))} " \
               f"{fake.pick(index, 'title', JOB_TITLES)} {index}"

    def _job_location(self, index: int) -> int:
        return self.faker["jobs"].number(index, "location", len(CITIES))

    def _job_department(self, index: int) -> int:
        return self.faker["jobs"].number(index, "department", len(DEPARTMENTS))

    def _job(self, index: int) -> dict:
        fake = self.faker["jobs"]
        users = self.sizes["users"]
        status = fake.pick(index, "status", JOB_STATUSES)
        location = self._job_location(index)
        secondary = [] if fake.chance(index, "single", 70) else [(location + 1) % len(CITIES)]
        plan = self._plan_of_job(index)
        opened = datetime(2024, 6, 1, tzinfo=UTC) + timedelta(days=fake.number(index, "opened", 200))
        return {
            "title": self._job_title(index),
            "confidential": fake.chance(index, "confidential", 10),
            "status": status,
            "employmentType": fake.pick(index, "employment", ("FullTime", "FullTime", "PartTime", "Contract",
                                                                "Intern")),
            "locationId": self._ref("locations", location),
            "secondaryLocationIds": [self._ref("locations", s) for s in secondary],
            "departmentId": self._ref("departments", self._job_department(index)),
            "defaultInterviewPlanId": self._ref("interview_plans", plan),
            "interviewPlanIds": [self._ref("interview_plans", plan)],
            "customFields": [],
            "jobPostingIds": [str(uuid.UUID(int=index + 1))],
            "hiringTeam": [
                {"userId": self._ref("users", fake.number(index, "hm", users)), "role": "Hiring Manager"},
                {"userId": self._ref("users", fake.number(index, "rec", users)), "role": "Recruiter"},
            ],
            "openedAt": _iso(opened) if status != "Draft" else None,
            "closedAt": _iso(opened + timedelta(days=60)) if status in ("Closed", "Archived") else None,
        }

    def _schedule(self, index: int) -> dict:
        fake = self.faker["interview_schedules"]
        application = (index * 2 + fake.number(index, "app", 2)) % self.sizes["applications"]
        candidate, job, _, order = self._application_parts(application)
        start = datetime(2025, 2, 1, 9, tzinfo=UTC) + timedelta(hours=fake.number(index, "start", 24 * 200))
        events = []
        for n in range(1 + fake.number(index, "events", 2)):
            begin = start + timedelta(hours=n)
            events.append({
                "id": str(uuid.UUID(int=(index << 8) + n + 1)),
                "interviewId": f"interview-{fake.number(index, f'kind{n}', 6)}",
                "interviewScheduleId": self._ref("interview_schedules", index),
                "interviewerUserIds": sorted({self._ref("users", fake.number(index, f"iv{n}{k}", self.sizes["users"]))
                                              for k in range(1 + fake.number(index, f"niv{n}", 2))}),
                "createdAt": _iso(start - timedelta(days=3)),
                "startTime": _iso(begin),
                "endTime": _iso(begin + timedelta(minutes=45)),
                "feedbackLink": f"https://app.ashbyhq.com/feedback/{index}-{n}",
                "location": fake.pick(index, f"room{n}", ("Zoom", "Google Meet", "Room 1", "Room 2")),
                "meetingLink": f"https://meet.example.com/{index}-{n}",
                "hasSubmittedFeedback": False,
            })
        return {
            "status": fake.pick(index, "status", SCHEDULE_STATUSES),
            "applicationId": self._ref("applications", application),
            "candidateId": self._ref("candidates", candidate),
            "interviewStageId": self._stage_brief(self._plan_of_job(job), min(order, 2) or 1)["id"],
            "interviewEvents": events,
        }

    def _offer(self, index: int) -> dict:
        fake = self.faker["offers"]
        application = (index * 8 + 3) % self.sizes["applications"]
        offer_status, acceptance = fake.pick(index, "state", OFFER_STATES)
        created = datetime(2025, 4, 1, tzinfo=UTC) + timedelta(hours=fake.number(index, "created", 24 * 150))
        decided = _iso(created + timedelta(days=5)) if offer_status in ("CandidateAccepted",
                                                                         "CandidateRejected") else None
        return {
            "decidedAt": decided,
            "applicationId": self._ref("applications", application),
            "acceptanceStatus": acceptance,
            "offerStatus": offer_status,
            "latestVersion": {
                "id": str(uuid.UUID(int=(index << 4) + 1)),
                "startDate": (created + timedelta(days=30 + fake.number(index, "start", 60))).strftime("%Y-%m-%d"),
                "salary": {"currencyCode": fake.pick(index, "currency", ("USD", "EUR", "GBP")),
                           "value": 60_000 + 1000 * fake.number(index, "salary", 120)},
                "createdAt": _iso(created),
                "customFields": [],
                "fileHandles": [],
                "author": self._user_brief(fake.number(index, "author", self.sizes["users"])),
            },
        }

    def _user(self, index: int) -> dict:
        brief = self._user_brief(index)
        brief.pop("id")
        return brief

    def _department(self, index: int) -> dict:
        parent = None if index < 2 else self._ref("departments", index % 2)
        return {"name": DEPARTMENTS[index], "externalName": DEPARTMENTS[index], "isArchived": False,
                "parentId": parent}

    def _location(self, index: int) -> dict:
        city, region, country, _ = CITIES[index]
        return {"name": f"{city} Office", "externalName": city, "isArchived": False, "isRemote": False,
                "address": {"postalAddress": {"addressLocality": city, "addressRegion": region,
                                              "addressCountry": country}},
                "parentLocationId": None}

    def _archive_reason(self, index: int) -> dict:
        brief = self._archive_reason_brief(index)
        brief.pop("id")
        return brief

    def _source(self, index: int) -> dict:
        brief = self._source_brief(index)
        brief.pop("id")
        return brief

    def _plan(self, index: int) -> dict:
        return {"title": PLANS[index], "isArchived": False}

    def _stage(self, index: int) -> dict:
        plan, order = divmod(index, len(STAGES_PER_PLAN))
        brief = self._stage_brief(plan, order)
        brief.pop("id")
        brief["interviewStageGroupId"] = f"group-{brief['type'].lower()}"
        brief["isArchived"] = False
        return brief

    # -- rendering ----------------------------------------------------------------------------
    def render(self, name: str, index: int, entry: Entry) -> dict:
        body = {"id": self.collections[name].id_of(index), **entry.record}
        if name in ("candidates", "applications", "jobs", "interview_schedules", "users", "departments"):
            body["createdAt"] = _iso(entry.created_at)
            body["updatedAt"] = _iso(entry.modified_at)
        return body

    def is_deleted(self, name: str, entry: Entry) -> bool:
        """What the canonical layer must show as deleted (see the module docstring)."""
        if entry.deleted_at is not None:
            return True
        if name == "interview_schedules":
            return entry.record.get("status") == "Cancelled"
        if name in ARCHIVE_FLAG_OBJECTS:
            return bool(entry.record.get("isArchived"))
        return False

    def _listed(self, name: str, entry: Entry, include_archived: bool) -> bool:
        if entry.deleted_at is not None:
            return False
        if include_archived:
            return True
        if name in ARCHIVE_FLAG_OBJECTS:
            return not entry.record.get("isArchived")
        if name == "users":
            return bool(entry.record.get("isEnabled", True))
        return True

    # -- HTTP ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/ashby/control", self.control, methods=["POST", "GET"]),
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

    def _authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return self.error_response(401, "Missing API key: use HTTP Basic with the key as user name",
                                       "unauthorized")
        try:
            user, _, _password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (ValueError, binascii.Error):
            return self.error_response(401, "Malformed Basic authorization header", "unauthorized")
        if not self.state.is_valid_token(user):
            return self.error_response(403, "Invalid or deactivated API key", "forbidden")
        return None

    async def rpc(self, request: Request) -> Response:
        denied = self._authenticate(request)
        if denied:
            return denied
        if self.state.rate_limits:
            allowed, _ = self.window.take()
            if not allowed:
                return self.error_response(429, "Rate limit exceeded", "rate_limited")
        endpoint = request.path_params["endpoint"]
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
            cursor = _decode_cursor(str(body["cursor"]))
            if cursor is None or cursor.get("o") != spec.name:
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
            next_cursor = _encode_cursor({"o": spec.name, "i": next_index, "p": pass_started.isoformat()}) \
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
            next_cursor = _encode_cursor({"o": spec.name, "p": pass_started.isoformat(), "s": since.isoformat(),
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

    # -- mutations ----------------------------------------------------------------------------
    def mutate(self, object_name: str, action: str, count: int, rng: random.Random,
               ids: list[str] | None) -> list[str]:
        collection = self.collections[object_name]
        if action == "create":
            done = []
            for _ in range(count):
                index = collection.create(lambda i: self._fresh(object_name, i, rng), utcnow())
                done.append(collection.id_of(index))
                self._notify(object_name, "create", index)
            return done
        if ids is not None:
            indexes = [collection.index_of(i) for i in ids]
            if None in indexes:
                raise KeyError(ids[indexes.index(None)])
        else:
            pool = [i for i in range(collection.size) if self._eligible(object_name, action, collection.get(i))]
            indexes = rng.sample(pool, min(count, len(pool)))
        done = []
        for index in indexes:
            now = utcnow()  # every change gets its own time, as real edits do
            if action == "update":
                collection.update(index, lambda rec, t=now: self._changed(object_name, rec, t), now)
            elif action == "delete":
                if object_name == "candidates":
                    collection.delete(index, now)
                else:
                    collection.update(index, lambda rec, t=now: self._archived(object_name, rec, t, rng), now)
            elif action == "restore":
                if collection.get(index).deleted_at is not None:
                    collection.restore(index, now)
                else:
                    collection.update(index, lambda rec, i=index: self._restored(object_name, rec, i), now)
            else:
                raise KeyError(action)
            done.append(collection.id_of(index))
            self._notify(object_name, action, index)
        return done

    def _eligible(self, name: str, action: str, entry: Entry) -> bool:
        archived = self._archived_state(name, entry)
        if action == "restore":
            return archived
        return entry.deleted_at is None and not (action == "delete" and archived)

    @staticmethod
    def _archived_state(name: str, entry: Entry) -> bool:
        if entry.deleted_at is not None:
            return True
        record = entry.record
        return {
            "applications": record.get("status") == "Archived",
            "jobs": record.get("status") == "Archived",
            "interview_schedules": record.get("status") == "Cancelled",
            "offers": record.get("offerStatus") == "OfferCancelled",
            "users": not record.get("isEnabled", True),
        }.get(name, bool(record.get("isArchived")))

    def _fresh(self, name: str, index: int, rng: random.Random) -> dict:
        """A new record: generated like a base record; links point at existing records."""
        if name == "applications":
            candidate = rng.randrange(self.collections["candidates"].base_size)
            record = self._application(index, candidate=candidate)
            record.update(status="Active", archiveReason=None, archivedAt=None)
            return record
        if name == "interview_schedules":
            record = self._schedule(index % max(1, self.sizes["interview_schedules"]))
            record["status"] = "Scheduled"
            for event in record["interviewEvents"]:
                event["interviewScheduleId"] = self.collections[name].id_of(index)
            return record
        if name == "offers":
            record = self._offer(index % max(1, self.sizes["offers"]))
            record.update(offerStatus="WaitingOnApprovalStart", acceptanceStatus="Created", decidedAt=None)
            return record
        factory = self.collections[name].factory
        if name in ("departments", "locations", "archive_reasons", "sources", "interview_plans",
                    "interview_stages"):
            record = json.loads(json.dumps(factory(index % self.sizes[name])))
            key = "text" if name == "archive_reasons" else "title" if name in ("sources", "interview_plans",
                                                                            "interview_stages") else "name"
            record[key] = f"{record[key]} {index}"
            return record
        return factory(index)

    @staticmethod
    def _changed(name: str, record: dict, now: datetime) -> dict:
        stamp = now.strftime("%H%M%S%f")
        if name == "candidates":
            record["position"] = f"updated {stamp}"
        elif name == "applications":
            record["source"] = {**record["source"], "title": f"updated {stamp}"}
        elif name == "jobs":
            record["title"] = f"updated {stamp}"
        elif name == "interview_schedules":
            record["status"] = "Complete" if record["status"] != "Complete" else "WaitingOnFeedback"
            record["interviewEvents"] = [{**e, "location": f"updated {stamp}"} for e in record["interviewEvents"]]
        elif name == "offers":
            record["offerStatus"], record["acceptanceStatus"] = "CandidateAccepted", "Accepted"
            record["decidedAt"] = _iso(now)
        elif name == "users":
            record["lastName"] = f"{record['lastName']} (updated {stamp})"
        elif name == "archive_reasons":
            record["text"] = f"updated {stamp}"
        elif name in ("sources", "interview_plans", "interview_stages"):
            record["title"] = f"updated {stamp}"
        else:
            record["name"] = f"updated {stamp}"
        return record

    def _archived(self, name: str, record: dict, now: datetime, rng: random.Random) -> dict:
        if name == "applications":
            record["status"] = "Archived"
            record["archiveReason"] = self._archive_reason_brief(rng.randrange(len(ARCHIVE_REASONS) - 1))
            record["archivedAt"] = _iso(now)
        elif name == "jobs":
            record["status"] = "Archived"
            record["closedAt"] = record.get("closedAt") or _iso(now)
        elif name == "interview_schedules":
            record["status"] = "Cancelled"
        elif name == "offers":
            record["offerStatus"], record["acceptanceStatus"] = "OfferCancelled", "Cancelled"
            record["decidedAt"] = _iso(now)
        elif name == "users":
            record["isEnabled"] = False
        else:
            record["isArchived"] = True
        return record

    def _restored(self, name: str, record: dict, index: int) -> dict:
        if name == "applications":
            record.update(status="Active", archiveReason=None, archivedAt=None)
        elif name == "jobs":
            record.update(status="Open", closedAt=None)
        elif name == "interview_schedules":
            record["status"] = "Scheduled"
        elif name == "offers":
            record.update(offerStatus="WaitingOnCandidateResponse", acceptanceStatus="WaitingOnResponse",
                          decidedAt=None)
        elif name == "users":
            record["isEnabled"] = True
        else:
            record["isArchived"] = False
        return record

    # -- webhooks -----------------------------------------------------------------------------
    WEBHOOK_ACTIONS = {
        ("candidates", "create"): "candidateCreate", ("candidates", "update"): "candidateUpdate",
        ("candidates", "delete"): "candidateDelete", ("candidates", "restore"): "candidateUpdate",
        ("applications", "create"): "applicationSubmit", ("applications", "update"): "applicationUpdate",
        ("applications", "delete"): "applicationUpdate", ("applications", "restore"): "applicationUpdate",
        ("jobs", "create"): "jobCreate", ("jobs", "update"): "jobUpdate", ("jobs", "delete"): "jobUpdate",
        ("jobs", "restore"): "jobUpdate",
        ("interview_schedules", "create"): "interviewScheduleCreate",
        ("offers", "create"): "offerCreate",
    }

    def _notify(self, name: str, action: str, index: int) -> None:
        url = self.state.webhook_url
        if not url:
            return
        event = self.WEBHOOK_ACTIONS.get((name, action))
        if event is None:
            prefix = SPECS[name].webhook or name.rstrip("s")
            event = f"{prefix}{'Create' if action == 'create' else 'Update'}"
        collection = self.collections[name]
        entry = collection.get(index)
        data_key = {"applications": "application", "candidates": "candidate", "jobs": "job",
                    "interview_schedules": "interviewSchedule", "offers": "offer"}.get(name, name)
        data = {data_key: {"id": collection.id_of(index)} if entry.deleted_at is not None
                else self.render(name, index, entry)}
        raw = json.dumps({"action": event, "data": data}, separators=(",", ":")).encode()
        signature = "sha256=" + hmac.new(self.webhook_secret.encode(), raw, hashlib.sha256).hexdigest()
        delivery = {"url": url, "action": event, "body": raw.decode(), "signature": signature, "status": None}
        with self.lock:
            self.webhooks_sent.append(delivery)

        def send() -> None:
            try:
                response = requests.post(url, data=raw, timeout=5, headers={
                    "Content-Type": "application/json", "Ashby-Signature": signature,
                    "User-Agent": "Ashby-Webhook"})
                delivery["status"] = response.status_code
            except requests.RequestException as exc:
                delivery["status"] = f"failed: {type(exc).__name__}"

        threading.Thread(target=send, name="ashby-webhook", daemon=True).start()

    # -- truth --------------------------------------------------------------------------------
    def truth(self, object_name: str) -> list[dict]:
        collection = self.collections[object_name]
        out = []
        for index in range(collection.size):
            entry = collection.get(index)
            out.append({"id": collection.id_of(index), "deleted": self.is_deleted(object_name, entry),
                        "updated_at": _iso(entry.modified_at), "record": self.render(object_name, index, entry)})
        return out
