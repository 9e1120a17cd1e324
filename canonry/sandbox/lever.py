"""Lever Data API v1 simulator (API notes: sources/lever/README.md).

Served under `/v1`: `/opportunities` (filters `updated_at_start`/`_end`, `confidentiality`, `archived`,
`expand=applications`), `/opportunities/deleted` (`deleted_at_start`), `/opportunities/{id}`,
`/opportunities/{id}/interviews`, `/opportunities/{id}/offers`, `/postings` (`updated_at_start`, `state`),
`/users` (`includeDeactivated`), `/stages`, `/archive_reasons`. Every list answers
`{data, hasNext, next}` with an opaque `next` token passed back as `offset`, `limit` 1-100 (default 100).
All timestamps are epoch milliseconds. Auth: OAuth bearer tokens (Auth0-style authorize with `audience`,
1-hour access tokens, rotating single-use refresh tokens) or an API key over HTTP Basic. Rate limit: a
token bucket of 10 requests/s with bursts of 20, then 429 `{code, message}`. Mutations (through the
control endpoint) send signed webhooks in Lever's format to `state.webhook_url`.

Data model (all generated lazily from (seed, index); scale 1M costs no memory until records change):
* opportunity i belongs to contact `contact_of(i)`: every 7th opportunity (i % 7 == 4) is a second
  opportunity of the previous opportunity's contact. Contact fields (name, headline, emails, phones,
  links, location) are rendered from the contact, so every opportunity of a contact shows the same values;
  a contact change touches (re-stamps `updatedAt` of) every opportunity of that contact, as Lever does.
* interviews: opportunity i has [0, 1, 2, 1][i % 4] base interviews (closed-form index mapping);
  offers: opportunity i has one base offer when i % 5 == 3. Created interviews/offers attach to any
  opportunity. Any interview/offer change re-stamps its opportunity's `updatedAt` and `lastInteractionAt`
  (that is what lets a client find changed interviews/offers through `updated_at_start`).
* Default listing of opportunities hides confidential ones (`confidentiality=all` shows both), as Lever does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import requests
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.datagen import CITIES, DEPARTMENTS, JOB_TITLES, Faker
from canonry.sandbox.engine import SandboxState, bearer_token, json_response, utcnow
from canonry.sandbox.oauth_server import OAuthClient, OAuthError, OAuthServer
from canonry.sandbox.webhook_registration import lever_webhook_routes

PAGE_MAX = 100
AUDIENCE = "https://api.lever.co/v1/"
DEFAULT_CLIENT_ID = "canonry-lever-client"
DEFAULT_CLIENT_SECRET = "sandbox-lever-client-secret"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"
DEFAULT_SIGNATURE_TOKEN = "sandbox-lever-webhook-signature-token"
ACCESS_TTL = 3600

# id namespaces: Lever ids are UUIDs; ours are UUID-shaped with a per-object prefix and the index.
TAGS = {"opportunities": 0x0AA00001, "contacts": 0x0CC00001, "applications": 0x0AB00001,
        "postings": 0x0BB00001, "users": 0x0EE00001, "interviews": 0x01100001, "offers": 0x0FF00001,
        "panels": 0x0DD00001, "feedback": 0x0FE00001}

# The default pipeline: Lever's built-in stages have readable ids, custom ones are UUIDs.
STAGES: tuple[tuple[str, str], ...] = (
    ("lead-new", "New lead"), ("lead-reached-out", "Reached out"), ("lead-responded", "Responded"),
    ("applicant-new", "New applicant"),
    ("2a1d4bd4-1c2e-4a5b-9f01-00000000000a", "Recruiter screen"),
    ("2a1d4bd4-1c2e-4a5b-9f01-00000000000b", "Phone interview"),
    ("2a1d4bd4-1c2e-4a5b-9f01-00000000000c", "On-site interview"),
    ("offer", "Offer"),
)
ARCHIVE_REASONS: tuple[tuple[str, str, str], ...] = (
    ("63dd55b2-a99f-4e7b-985f-22c7bf80ab01", "Hired", "hired"),
    ("63dd55b2-a99f-4e7b-985f-22c7bf80ab02", "Underqualified", "non-hired"),
    ("63dd55b2-a99f-4e7b-985f-22c7bf80ab03", "Withdrew", "non-hired"),
    ("63dd55b2-a99f-4e7b-985f-22c7bf80ab04", "Position filled", "non-hired"),
    ("63dd55b2-a99f-4e7b-985f-22c7bf80ab05", "Timing", "non-hired"),
    ("63dd55b2-a99f-4e7b-985f-22c7bf80ab06", "Culture add not aligned", "non-hired"),
)
HIRED_REASON = ARCHIVE_REASONS[0][0]
ACCESS_ROLES = ("super admin", "admin", "team member", "limited team member", "interviewer")
ORIGINS = ("applied", "sourced", "referred", "university", "agency", "internal")
SOURCES = ("LinkedIn", "Referral", "Company website", "Indeed", "AngelList", "Agency")
TAG_WORDS = ("backend", "frontend", "senior", "remote", "visa", "priority", "silver-medalist", "diversity")
PHONE_TYPES = ("mobile", "home", "work", "skype", "other")
POSTING_STATES = ("published", "published", "published", "internal", "closed", "draft", "pending", "rejected")
COMMITMENTS = ("Full-time", "Part-time", "Contract", "Internship")
TEAM_SUFFIXES = ("Platform", "Growth", "Core")
OFFER_STATUSES = ("draft", "approval-sent", "approved", "sent", "sent-manually", "opened", "denied", "signed")
INTERVIEWS_PER = (0, 1, 2, 1)  # base interviews of opportunity i: INTERVIEWS_PER[i % 4]
INTERVIEW_START = (0, 0, 1, 3)  # index of its first interview within the block of four
FUTURE = datetime(2027, 3, 1, tzinfo=UTC)


def ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def from_ms(value: str | int) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def uid(kind: str, index: int) -> str:
    return f"{TAGS[kind]:08x}-0000-4000-8000-{index:012x}"


def parse_uid(kind: str) -> Callable[[str], int | None]:
    prefix = f"{TAGS[kind]:08x}-0000-4000-8000-"

    def parse(remote_id: str) -> int | None:
        if not remote_id.startswith(prefix):
            return None
        try:
            return int(remote_id[len(prefix):], 16)
        except ValueError:
            return None
    return parse


def contact_of(index: int) -> int:
    """Base opportunity -> contact index (every 7th opportunity is a contact's second one)."""
    return index - 1 if index % 7 == 4 else index


def signature(signature_token: str, token: str, triggered_at: int) -> str:
    """Lever's webhook signature: hex HMAC-SHA256(signatureToken, token + str(triggeredAt))."""
    return hmac.new(signature_token.encode(), (token + str(triggered_at)).encode(), hashlib.sha256).hexdigest()


class TokenBucket:
    """Lever's limiter: `rate` requests per second steady, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


def _token(payload: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _untoken(value: str) -> dict:
    padded = value + "=" * (-len(value) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode()))


async def _form(request: Request) -> dict[str, str]:
    """A form-encoded or JSON body (no python-multipart needed: token requests are url-encoded)."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        return {k: str(v) for k, v in json.loads(raw or b"{}").items()}
    return dict(parse_qsl(raw.decode(), keep_blank_values=True))


class LeverSimulator:
    slug = "lever"

    def __init__(self, state: SandboxState, rate_per_second: float = 10.0, burst: int = 20,
                 signature_token: str = DEFAULT_SIGNATURE_TOKEN,
                 redirect_uris: tuple[str, ...] = (DEFAULT_REDIRECT_URI,)) -> None:
        self.state = state
        scale = state.scale
        seed = state.seed
        self.posting_count = max(5, min(500, scale // 10))
        self.user_count = max(5, min(200, scale // 20))
        self.fake = {name: Faker(seed, f"lever.{name}") for name in
                     ("opportunities", "contacts", "postings", "users", "interviews", "offers")}
        base_interviews = 4 * (scale // 4) + sum(INTERVIEWS_PER[r] for r in range(scale % 4))
        base_offers = sum(1 for i in range(scale % 5) if i == 3) + scale // 5
        self.collections: dict[str, Collection] = {
            "opportunities": self._collection("opportunities", scale, self._opportunity),
            "postings": self._collection("postings", self.posting_count, self._posting),
            "users": self._collection("users", self.user_count, self._user),
            "interviews": self._collection("interviews", base_interviews, self._interview),
            "offers": self._collection("offers", base_offers, self._offer),
            "stages": Collection("stages", len(STAGES), lambda i: {"text": STAGES[i][1]},
                                 lambda i: STAGES[i][0],
                                 lambda s: next((n for n, (sid, _) in enumerate(STAGES) if sid == s), None)),
            "archive_reasons": Collection("archive_reasons", len(ARCHIVE_REASONS),
                                          lambda i: {"text": ARCHIVE_REASONS[i][1], "status": ARCHIVE_REASONS[i][2]},
                                          lambda i: ARCHIVE_REASONS[i][0],
                                          lambda s: next((n for n, r in enumerate(ARCHIVE_REASONS) if r[0] == s),
                                                         None)),
        }
        # Small overlays (only what changed): contact field changes, children of created records.
        self.contact_changes: dict[int, dict] = {}
        self.contact_extra: dict[int, list[int]] = {}       # contact -> created opportunities
        self.extra_children: dict[str, dict[int, list[int]]] = {"interviews": {}, "offers": {}}
        self.bucket = TokenBucket(rate_per_second, burst)
        self.oauth = OAuthServer(state, access_ttl=ACCESS_TTL, rotate_refresh_tokens=True, token_prefix="lv")
        self.oauth.register(OAuthClient(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, tuple(redirect_uris)))
        self.signature_token = signature_token
        self.webhooks_sent: list[dict] = []

    @staticmethod
    def _collection(kind: str, size: int, factory: Callable[[int], dict]) -> Collection:
        return Collection(kind, size, factory, lambda i, k=kind: uid(k, i), parse_uid(kind))

    # -- data ---------------------------------------------------------------------------------
    def _user_id(self, fake: Faker, index: int, field: str) -> str:
        return uid("users", fake.number(index, field, self.user_count))

    def _contact(self, contact: int) -> dict:
        fake = self.fake["contacts"]
        first, last = fake.person(contact)
        city = fake.city(contact)[0]
        phones = [{"type": fake.pick(contact, "phone_type", PHONE_TYPES), "value": fake.phone(contact)}]
        if fake.chance(contact, "second_phone", 30):
            phones.append({"type": fake.pick(contact, "phone_type2", PHONE_TYPES), "value": fake.phone(contact, "p2")})
        emails = [fake.email(contact, first, last)]
        if fake.chance(contact, "second_email", 25):
            emails.append(fake.email(contact, first, last, "mail.example.org"))
        body = {
            "name": f"{first} {last}",
            "headline": f"{fake.pick(contact, 'title', JOB_TITLES)} at {fake.company(contact)}",
            "emails": emails, "phones": phones,
            "links": [f"https://www.linkedin.com/in/{first.lower()}-{contact}"]
            if fake.chance(contact, "links", 70) else [],
            "location": city if fake.chance(contact, "has_location", 85) else None,
        }
        body.update(self.contact_changes.get(contact, {}))
        return body

    def _opportunity(self, index: int) -> dict:
        fake = self.fake["opportunities"]
        stage_n = fake.number(index, "stage", len(STAGES))
        archived = None
        if fake.chance(index, "archived", 30):
            reason = fake.pick(index, "reason", ARCHIVE_REASONS)[0]
            archived = {"archivedAt": ms(self._base_time(index) - timedelta(hours=1)), "reason": reason}
        has_posting = fake.chance(index, "posting", 85)
        return {
            "_contact": contact_of(index),
            "stage": STAGES[stage_n][0],
            "confidentiality": "confidential" if fake.chance(index, "confidential", 6) else "non-confidential",
            "archived": archived,
            "tags": sorted({fake.pick(index, f"tag{n}", TAG_WORDS) for n in range(fake.number(index, "tags", 3))}),
            "sources": [fake.pick(index, "source", SOURCES)],
            "origin": fake.pick(index, "origin", ORIGINS),
            "owner": self._user_id(fake, index, "owner"),
            "sourcedBy": self._user_id(fake, index, "sourced_by") if fake.chance(index, "sourced", 50) else None,
            "_posting": fake.number(index, "posting_n", self.posting_count) if has_posting else None,
            "_stage_n": stage_n,
            "_interaction_days": fake.number(index, "interaction", 20),
        }

    @staticmethod
    def _base_time(index: int) -> datetime:
        from canonry.sandbox.collection import base_modified_at
        return base_modified_at(index)

    def _posting(self, index: int) -> dict:
        fake = self.fake["postings"]
        department = fake.pick(index, "department", DEPARTMENTS)
        location = fake.pick(index, "city", CITIES)[0]
        extra_location = fake.pick(index, "city2", CITIES)[0]
        title = fake.pick(index, "title", JOB_TITLES)
        return {
            "text": f"{title} ({index})",
            "state": fake.pick(index, "state", POSTING_STATES),
            "distributionChannels": ["public", "internal"],
            "confidentiality": "confidential" if fake.chance(index, "confidential", 5) else "non-confidential",
            "user": self._user_id(fake, index, "user"), "owner": self._user_id(fake, index, "owner"),
            "hiringManager": self._user_id(fake, index, "hm"),
            "categories": {"team": f"{department} {fake.pick(index, 'team', TEAM_SUFFIXES)}",
                           "department": department, "location": location,
                           "allLocations": sorted({location, extra_location}),
                           "commitment": fake.pick(index, "commitment", COMMITMENTS), "level": None},
            "tags": [fake.pick(index, "tag", TAG_WORDS)],
            "content": {"description": f"We are hiring a {title}: {fake.words(index, 'desc', 4)}.",
                        "descriptionHtml": f"<p>We are hiring a {title}.</p>", "lists": [],
                        "closing": "Apply now.", "closingHtml": "<p>Apply now.</p>"},
            "country": fake.pick(index, "city", CITIES)[2],
            "followers": [],
            "requisitionCodes": [f"REQ-{1000 + index}"] if fake.chance(index, "req", 70) else [],
            "workplaceType": fake.pick(index, "workplace", ("onsite", "remote", "hybrid", "unspecified")),
        }

    def _user(self, index: int) -> dict:
        fake = self.fake["users"]
        first, last = fake.person(index)
        role = "super admin" if index == 0 else fake.pick(index, "role", ACCESS_ROLES)
        return {
            "name": f"{first} {last}", "username": f"{first.lower()}{index}",
            "email": fake.email(index, first, last, "hire.example.com"),
            "deactivatedAt": None if index == 0 or not fake.chance(index, "deactivated", 10)
            else ms(datetime(2025, 6, 1, tzinfo=UTC)),
            "accessRole": role, "photo": None, "externalDirectoryId": None, "linkedContactIds": [],
            "jobTitle": fake.pick(index, "title", JOB_TITLES), "manager": None,
        }

    def _interview_opportunity(self, index: int) -> int:
        block, rest = divmod(index, 4)
        return 4 * block + (1 if rest == 0 else 2 if rest in (1, 2) else 3)

    def _interview(self, index: int) -> dict:
        return self._interview_body(index, self._interview_opportunity(index))

    def _interview_body(self, index: int, opportunity: int) -> dict:
        fake = self.fake["interviews"]
        roll = fake.number(index, "when", 100)
        start = FUTURE + timedelta(days=index % 30) if roll < 15 else \
            datetime(2025, 3, 1, 9, tzinfo=UTC) + timedelta(hours=index * 5 % 5000)
        interviewers = []
        for n in range(1 + fake.number(index, "panel_size", 3)):
            user = fake.number(index, f"interviewer{n}", self.user_count)
            if uid("users", user) not in (i["id"] for i in interviewers):
                first, last = self.fake["users"].person(user)
                interviewers.append({"id": uid("users", user), "name": f"{first} {last}",
                                     "email": self.fake["users"].email(user, first, last, "hire.example.com")})
        return {
            "_opp": opportunity,
            "panel": uid("panels", index), "subject": f"Interview {index}", "note": "",
            "interviewers": interviewers, "timezone": "Europe/Berlin", "date": ms(start),
            "duration": fake.pick(index, "duration", (30, 45, 60)),
            "location": fake.pick(index, "location", ("Zoom", "Google Meet", "Office")),
            "feedbackTemplate": None,
            "feedbackForms": [uid("feedback", index)] if roll >= 15 and fake.chance(index, "feedback", 70) else [],
            "feedbackReminder": "frequently", "user": self._user_id(fake, index, "organizer"),
            "stage": STAGES[4 + fake.number(index, "stage", 3)][0],
            "canceledAt": ms(start - timedelta(days=1)) if roll >= 95 else None,
            "postings": [],
        }

    def _offer(self, index: int) -> dict:
        return self._offer_body(index, 5 * index + 3)

    def _offer_body(self, index: int, opportunity: int) -> dict:
        fake = self.fake["offers"]
        status = fake.pick(index, "status", OFFER_STATUSES)
        sent = status in ("sent", "sent-manually", "opened", "denied", "signed")
        at = datetime(2025, 4, 1, tzinfo=UTC) + timedelta(hours=index * 7 % 4000)
        start_date = datetime(2025, 9, 1, tzinfo=UTC) + timedelta(days=fake.number(index, "start", 120))
        return {
            "_opp": opportunity,
            "status": status, "creator": self._user_id(fake, index, "creator"),
            "fields": [{"text": "Anticipated start date", "identifier": "anticipated_start_date",
                        "value": ms(start_date)},
                       {"text": "Salary", "identifier": "salary_amount",
                        "value": 60_000 + fake.number(index, "salary", 90) * 1000}],
            "approved": status not in ("draft", "approval-sent"),
            "approvedAt": ms(at) if status not in ("draft", "approval-sent") else None,
            "sentDocument": {"fileName": f"offer-{index}.pdf", "uploadedAt": ms(at + timedelta(hours=2))}
            if sent else None,
            "signatures": {"candidate": {"signedAt": ms(at + timedelta(days=2)) if status == "signed" else None}},
            "posting": None,
        }

    # -- relations ------------------------------------------------------------------------------
    def opportunities_of_contact(self, contact: int) -> list[int]:
        out = []
        base = self.collections["opportunities"].base_size
        if contact < base and contact % 7 != 4:
            out.append(contact)
            if contact + 1 < base and (contact + 1) % 7 == 4:
                out.append(contact + 1)
        elif contact >= base:
            out.append(contact)  # a created opportunity with its own new contact
        return out + self.contact_extra.get(contact, [])

    def children_of(self, kind: str, opportunity: int) -> list[int]:
        """Indexes of the interviews/offers of an opportunity (alive or not)."""
        base: list[int] = []
        if opportunity < self.collections["opportunities"].base_size:
            if kind == "interviews":
                first = 4 * (opportunity // 4) + INTERVIEW_START[opportunity % 4]
                base = [j for j in range(first, first + INTERVIEWS_PER[opportunity % 4])
                        if j < self.collections["interviews"].base_size]
            elif opportunity % 5 == 3 and opportunity // 5 < self.collections["offers"].base_size:
                base = [opportunity // 5]
        return base + self.extra_children[kind].get(opportunity, [])

    # -- rendering ----------------------------------------------------------------------------
    def render_opportunity(self, index: int, entry: Entry, expand_applications: bool = True) -> dict:
        record = entry.record
        contact = record["_contact"]
        opp_id = uid("opportunities", index)
        stage_time = ms(entry.created_at)
        applications: list = []
        if record["_posting"] is not None:
            app = {"id": uid("applications", index), "opportunityId": opp_id, "candidateId": uid("contacts", contact),
                   "createdAt": ms(entry.created_at), "type": "posting",
                   "posting": uid("postings", record["_posting"]), "postingOwner": None,
                   "postingHiringManager": None, "user": None, "archived": record["archived"],
                   "requisitionForHire": None}
            applications = [app if expand_applications else app["id"]]
        body = {"id": opp_id, **self._contact(contact), "contact": uid("contacts", contact),
                "stage": record["stage"],
                "stageChanges": [{"toStageId": record["stage"], "toStageIndex": record["_stage_n"],
                                  "updatedAt": stage_time, "userId": record["owner"]}],
                "confidentiality": record["confidentiality"], "archived": record["archived"],
                "tags": record["tags"], "sources": record["sources"], "sourcedBy": record["sourcedBy"],
                "origin": record["origin"], "owner": record["owner"], "followers": [record["owner"]],
                "applications": applications, "createdAt": ms(entry.created_at), "updatedAt": ms(entry.modified_at),
                "lastInteractionAt": record.get("lastInteractionAt")
                or ms(entry.created_at + timedelta(days=record["_interaction_days"])),
                "lastAdvancedAt": stage_time, "snoozedUntil": None, "isAnonymized": False, "dataProtection": None,
                "urls": {"list": f"https://hire.lever.co/candidates?id={opp_id}",
                         "show": f"https://hire.lever.co/candidates/{opp_id}"}}
        return body

    def render(self, kind: str, index: int, entry: Entry) -> dict:
        collection = self.collections[kind]
        public = {k: v for k, v in entry.record.items() if not k.startswith("_")}
        if kind == "opportunities":
            return self.render_opportunity(index, entry)
        if kind in ("stages", "archive_reasons"):
            body = {"id": collection.id_of(index), **public}
            if kind == "archive_reasons":
                body["type"] = body["status"]
            return body
        body = {"id": collection.id_of(index), "createdAt": ms(entry.created_at), **public}
        if kind == "postings":
            body["updatedAt"] = ms(entry.modified_at)
            body["urls"] = {"list": "https://jobs.lever.co/example", "show": f"https://jobs.lever.co/example/{body['id']}",
                            "apply": f"https://jobs.lever.co/example/{body['id']}/apply"}
        return body

    # -- errors and guard -----------------------------------------------------------------------
    def error_response(self, status: int, message: str, kind: str) -> Response:
        code = {"rate_limited": "TooManyRequests", "unauthorized": "UnauthorizedError", "not_found": "ResourceNotFound",
                "validation": "BadRequestError", "forbidden": "ForbiddenError",
                "method_not_allowed": "MethodNotAllowedError"}.get(kind)
        if code is None:
            code = "ServiceUnavailable" if status == 503 else "InternalServerError"
        return json_response({"code": code, "message": message}, status)

    def _guard(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                key = base64.b64decode(header[6:].strip()).decode().split(":", 1)[0]
            except ValueError:
                key = ""
            if not self.state.is_valid_token(key):
                return self.error_response(401, "Invalid API key", "unauthorized")
        else:
            token_state = self.oauth.token_state(bearer_token(request))
            if token_state == "invalid":
                return self.error_response(401, "Invalid or missing access token", "unauthorized")
            if token_state == "expired":
                return self.error_response(401, "Access token expired", "unauthorized")
        if self.state.rate_limits and not self.bucket.take():
            return self.error_response(429, "Too many requests: the limit is 10 requests per second per API key "
                                       "(bursts up to 20)", "rate_limited")
        return None

    # -- routes -------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route("/v1/opportunities", self.list_opportunities, methods=["GET"]),
            Route("/v1/opportunities/deleted", self.list_deleted, methods=["GET"]),
            Route("/v1/opportunities/{id}", self.get_opportunity, methods=["GET"]),
            Route("/v1/opportunities/{id}/interviews", self.list_children, methods=["GET"]),
            Route("/v1/opportunities/{id}/offers", self.list_children, methods=["GET"]),
            Route("/v1/postings", self.list_postings, methods=["GET"]),
            Route("/v1/users", self.list_users, methods=["GET"]),
            *lever_webhook_routes(self),  # POST /v1/webhooks: canonry/sandbox/webhook_registration.py
            Route("/v1/stages", self.list_static, methods=["GET"]),
            Route("/v1/archive_reasons", self.list_static, methods=["GET"]),
            # Auth0 serves the consent page at /authorize (https://auth.lever.co/authorize), which is what
            # sources/lever/settings.py derives with a base_url; /oauth/authorize is kept as an alias.
            Route("/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/oauth/revoke", self.revoke, methods=["POST"]),
        ]

    def _limit(self, request: Request) -> int:
        raw = request.query_params.get("limit", str(PAGE_MAX))
        limit = int(raw)  # ValueError -> caller answers 400
        if not 1 <= limit <= PAGE_MAX:
            raise ValueError(f"limit must be between 1 and {PAGE_MAX}")
        return limit

    def _page(self, request: Request, rows: Callable[[dict], Iterator[tuple[dict, dict]]],
              render: Callable[[dict], dict] | None = None) -> Response:
        """Shared paging: `rows(position)` yields (record body, next position) from a decoded offset."""
        try:
            limit = self._limit(request)
            offset = request.query_params.get("offset")
            position = _untoken(offset) if offset else {}
        except (ValueError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            return self.error_response(400, f"Invalid request: {exc}", "validation")
        data: list[dict] = []
        next_position = None
        for body, after in rows(position):
            if len(data) == limit:
                next_position = after
                break
            data.append(body)
        payload: dict = {"data": data, "hasNext": next_position is not None}
        if next_position is not None:
            payload["next"] = _token(next_position)
        return json_response(payload)

    @staticmethod
    def _ms_param(request: Request, name: str) -> datetime | None:
        value = request.query_params.get(name)
        return from_ms(value) if value not in (None, "") else None

    async def list_opportunities(self, request: Request) -> Response:
        error = self._guard(request)
        if error:
            return error
        q = request.query_params
        try:
            since, until = self._ms_param(request, "updated_at_start"), self._ms_param(request, "updated_at_end")
        except ValueError:
            return self.error_response(400, "updated_at_start/updated_at_end must be epoch milliseconds", "validation")
        confidentiality = q.get("confidentiality", "non-confidential")
        archived = q.get("archived")
        expand = "applications" in q.getlist("expand")
        collection = self.collections["opportunities"]

        def keep(entry: Entry) -> bool:
            record = entry.record
            if confidentiality != "all" and record["confidentiality"] != confidentiality:
                return False
            if archived is not None and (record["archived"] is not None) != (archived == "true"):
                return False
            return until is None or entry.modified_at <= until

        def rows(position: dict) -> Iterator[tuple[dict, dict]]:
            if since is None:
                # Plain listing in creation order: the offset token is the next index (O(1) resume).
                for index, entry in collection.iter_alive(position.get("i", 0)):
                    if keep(entry):
                        yield self.render_opportunity(index, entry, expand), {"i": index}
                return
            skip = position.get("n", 0)
            for n, (index, entry) in enumerate(collection.iter_modified_since(since)):
                if n >= skip and keep(entry):
                    yield self.render_opportunity(index, entry, expand), {"n": n}
        return self._page(request, rows)

    async def list_deleted(self, request: Request) -> Response:
        error = self._guard(request)
        if error:
            return error
        try:
            since = self._ms_param(request, "deleted_at_start") or datetime(1970, 1, 1, tzinfo=UTC)
        except ValueError:
            return self.error_response(400, "deleted_at_start must be epoch milliseconds", "validation")
        collection = self.collections["opportunities"]

        def rows(position: dict) -> Iterator[tuple[dict, dict]]:
            skip = position.get("n", 0)
            deleted = sorted(((e.deleted_at, i) for i, e in collection.iter_deleted() if e.deleted_at >= since))
            for n, (at, index) in enumerate(deleted):
                if n >= skip:
                    yield {"id": collection.id_of(index), "deletedAt": ms(at),
                           "deletedBy": uid("users", 0)}, {"n": n}
        return self._page(request, rows)

    async def get_opportunity(self, request: Request) -> Response:
        error = self._guard(request)
        if error:
            return error
        collection = self.collections["opportunities"]
        index = collection.index_of(request.path_params["id"])
        if index is None or not collection.is_alive(index):
            return self.error_response(404, "Opportunity not found", "not_found")
        return json_response({"data": self.render_opportunity(index, collection.get(index),
                                                              "applications" in request.query_params.getlist("expand"))})

    async def list_children(self, request: Request) -> Response:
        error = self._guard(request)
        if error:
            return error
        kind = "interviews" if request.url.path.endswith("/interviews") else "offers"
        opportunities = self.collections["opportunities"]
        opp = opportunities.index_of(request.path_params["id"])
        if opp is None or not opportunities.is_alive(opp):
            return self.error_response(404, "Opportunity not found", "not_found")
        collection = self.collections[kind]

        def rows(position: dict) -> Iterator[tuple[dict, dict]]:
            skip = position.get("n", 0)
            alive = [j for j in self.children_of(kind, opp) if collection.is_alive(j)]
            for n, j in enumerate(alive):
                if n >= skip:
                    yield self.render(kind, j, collection.get(j)), {"n": n}
        return self._page(request, rows)

    async def list_postings(self, request: Request) -> Response:
        error = self._guard(request)
        if error:
            return error
        try:
            since = self._ms_param(request, "updated_at_start")
        except ValueError:
            return self.error_response(400, "updated_at_start must be epoch milliseconds", "validation")
        states = request.query_params.getlist("state")
        collection = self.collections["postings"]

        def rows(position: dict) -> Iterator[tuple[dict, dict]]:
            source = collection.iter_modified_since(since) if since else collection.iter_alive()
            skip = position.get("n", 0)
            for n, (index, entry) in enumerate(source):
                if n >= skip and (not states or entry.record["state"] in states):
                    yield self.render("postings", index, entry), {"n": n}
        return self._page(request, rows)

    async def list_users(self, request: Request) -> Response:
        error = self._guard(request)
        if error:
            return error
        include_deactivated = request.query_params.get("includeDeactivated", "false").lower() == "true"
        collection = self.collections["users"]

        def rows(position: dict) -> Iterator[tuple[dict, dict]]:
            for index, entry in collection.iter_alive(position.get("i", 0)):
                if include_deactivated or entry.record["deactivatedAt"] is None:
                    yield self.render("users", index, entry), {"i": index}
        return self._page(request, rows)

    async def list_static(self, request: Request) -> Response:
        error = self._guard(request)
        if error:
            return error
        kind = "stages" if request.url.path.endswith("/stages") else "archive_reasons"
        collection = self.collections[kind]

        def rows(position: dict) -> Iterator[tuple[dict, dict]]:
            for index, entry in collection.iter_alive(position.get("i", 0)):
                yield self.render(kind, index, entry), {"i": index}
        return self._page(request, rows)

    # -- OAuth (Auth0-style) --------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("audience") != AUDIENCE:
            return json_response({"error": "access_denied",
                                  "error_description": f"Service not found: {q.get('audience')}"}, 400)
        if q.get("response_type", "code") != "code":
            return json_response({"error": "unsupported_response_type",
                                  "error_description": "response_type must be code"}, 400)
        try:
            code = self.oauth.authorize(q.get("client_id", ""), q.get("redirect_uri", ""), q.get("scope", ""),
                                        q.get("code_challenge"), q.get("code_challenge_method"))
        except OAuthError as exc:
            return json_response({"error": exc.error, "error_description": exc.description}, 400)
        params = {"code": code}
        if q.get("state") is not None:
            params["state"] = q["state"]
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode(params)}", status_code=302)

    async def token(self, request: Request) -> Response:
        form = await _form(request)
        grant = form.get("grant_type")
        try:
            if form.get("audience") not in (None, AUDIENCE):
                raise OAuthError("access_denied", f"Service not found: {form.get('audience')}", 403)
            if grant == "authorization_code":
                if form.get("audience") is None:
                    raise OAuthError("access_denied", "the audience parameter is required", 403)
                issued = self.oauth.exchange_code(form)
            elif grant == "refresh_token":
                issued = self.oauth.refresh(form)
            else:
                raise OAuthError("unsupported_grant_type", f"Unsupported grant type: {grant}")
        except OAuthError as exc:
            # Auth0 answers a dead (used, revoked or unknown) refresh token with 403 invalid_grant.
            status = 403 if exc.error == "invalid_grant" else exc.status
            return json_response({"error": exc.error, "error_description": exc.description}, status)
        return json_response({"access_token": issued.access_token, "refresh_token": issued.refresh_token,
                              "expires_in": issued.expires_in, "token_type": "Bearer",
                              "scope": " ".join(issued.scopes)})

    async def revoke(self, request: Request) -> Response:
        form = await _form(request)
        self.oauth.revoke(form.get("token", ""))
        return Response(status_code=200)

    # -- control ------------------------------------------------------------------------------
    def mutate(self, object_name: str, action: str, count: int, rng: random.Random,
               ids: list[str] | None) -> list[str]:
        if object_name not in ("opportunities", "postings", "users", "interviews", "offers"):
            raise KeyError(f"{object_name} (read-only in this sandbox)")
        if object_name in ("postings", "users") and action in ("delete", "restore"):
            raise KeyError(f"{object_name} cannot be {action}d in Lever (close or deactivate it instead)")
        collection = self.collections[object_name]
        if action == "create":
            return [self._create(object_name, rng) for _ in range(count)]
        eligible = None
        if object_name in ("interviews", "offers"):  # only children of opportunities that still exist
            alive_opps = self.collections["opportunities"]
            eligible = lambda i: alive_opps.is_alive(collection.get(i).record["_opp"])  # noqa: E731
        indexes = collection.targets(action, count, rng, ids, eligible)
        done = []
        for index in indexes:
            now = utcnow()  # every change gets its own time, as real edits do
            if action == "update":
                self._update(object_name, index, rng, now)
            elif action == "delete":
                collection.delete(index, now)
                if object_name == "opportunities":
                    self._webhook("candidateDeleted", self._opp_event(index, deletedBy=uid("users", 0)))
                else:
                    self._child_changed(object_name, index, now, "Deleted")
            elif action == "restore":
                collection.restore(index, now)
                if object_name in ("interviews", "offers"):
                    self._child_changed(object_name, index, now, "Updated")
            done.append(collection.id_of(index))
        return done

    def _create(self, object_name: str, rng: random.Random) -> str:
        collection = self.collections[object_name]
        now = utcnow()
        if object_name == "opportunities":
            opportunities = collection
            existing = [i for i, _ in opportunities.iter_alive()]
            attach = rng.random() < 0.3 and existing

            def make(index: int) -> dict:
                record = dict(self._opportunity(index % max(1, opportunities.base_size)))
                record["_contact"] = opportunities.get(rng.choice(existing)).record["_contact"] if attach else index
                record["archived"] = None
                record["stage"], record["_stage_n"] = STAGES[3][0], 3
                record["origin"] = "applied"
                return record
            index = opportunities.create(make, now)
            contact = opportunities.get(index).record["_contact"]
            if contact != index:
                self.contact_extra.setdefault(contact, []).append(index)
            self._webhook("applicationCreated", {**self._opp_event(index),
                                                 "applicationId": uid("applications", index)})
            return uid("opportunities", index)
        if object_name in ("interviews", "offers"):
            alive = [i for i, _ in self.collections["opportunities"].iter_alive()]
            opp = rng.choice(alive)
            body = self._interview_body if object_name == "interviews" else self._offer_body
            index = collection.create(lambda i: body(i, opp), now)
            self.extra_children[object_name].setdefault(opp, []).append(index)
            self._child_changed(object_name, index, now, "Created")
            return collection.id_of(index)
        factory = self._posting if object_name == "postings" else self._user
        index = collection.create(lambda i: factory(i), now)
        return collection.id_of(index)

    def _update(self, object_name: str, index: int, rng: random.Random, now: datetime) -> None:
        collection = self.collections[object_name]
        stamp = now.strftime("%H%M%S%f")
        if object_name == "opportunities":
            choice = rng.choice(("stage", "archive", "tags", "contact"))
            before = collection.get(index).record

            def change(record: dict) -> dict:
                record["lastInteractionAt"] = ms(now)
                if choice == "stage":
                    n = (record["_stage_n"] + 1) % len(STAGES)
                    record["stage"], record["_stage_n"] = STAGES[n][0], n
                elif choice == "archive":
                    if record["archived"] is None:
                        reason = rng.choice(ARCHIVE_REASONS)[0]
                        record["archived"] = {"archivedAt": ms(now), "reason": reason}
                    else:
                        record["archived"] = None
                elif choice == "tags":
                    record["tags"] = sorted({*record["tags"], f"updated-{stamp}"})
                return record
            collection.update(index, change, now)
            if choice == "contact":
                contact = before["_contact"]
                self.contact_changes.setdefault(contact, {})["headline"] = f"Updated headline {stamp}"
                for sibling in self.opportunities_of_contact(contact):
                    if sibling != index and collection.is_alive(sibling):
                        collection.update(sibling, lambda r: r, now)
            event = {"stage": "candidateStageChange", "archive": "candidateArchiveChange"}.get(choice,
                                                                                             "contactUpdated")
            after = collection.get(index).record
            data = self._opp_event(index)
            if choice == "stage":
                data.update(fromStageId=before["stage"], toStageId=after["stage"])
            elif choice == "archive":
                data.update(fromArchived=before["archived"], toArchived=after["archived"])
                if after["archived"] and after["archived"]["reason"] == HIRED_REASON:
                    self._webhook("candidateHired", self._opp_event(index))
            self._webhook(event, data)
            return
        if object_name == "postings":
            collection.update(index, lambda r: {**r, "text": f"{r['text'].split(' [')[0]} [updated {stamp}]",
                                                "state": rng.choice(POSTING_STATES)}, now)
            return
        if object_name == "users":
            collection.update(index, lambda r: {**r, "jobTitle": f"updated {stamp}",
                                                "deactivatedAt": None if r["deactivatedAt"] else ms(now)}
                              if index else {**r, "jobTitle": f"updated {stamp}"}, now)
            return
        if object_name == "interviews":
            collection.update(index, lambda r: {**r, "subject": f"Interview (moved {stamp})",
                                                "date": ms(FUTURE + timedelta(days=rng.randint(1, 60)))}, now)
        else:
            collection.update(index, lambda r: {**r, "status": rng.choice(OFFER_STATUSES)}, now)
        self._child_changed(object_name, index, now, "Updated")

    def _child_changed(self, kind: str, index: int, now: datetime, verb: str) -> None:
        """An interview/offer changed: its opportunity's updatedAt and lastInteractionAt move."""
        opp = self.collections[kind].get(index).record["_opp"]
        opportunities = self.collections["opportunities"]
        if opportunities.is_alive(opp):
            opportunities.update(opp, lambda r: {**r, "lastInteractionAt": ms(now)}, now)
        if kind == "interviews":
            self._webhook(f"interview{verb}", {**self._opp_event(opp), "interviewId": uid("interviews", index),
                                               "panelId": self.collections["interviews"].get(index).record["panel"]})

    def _opp_event(self, index: int, **extra) -> dict:
        contact = self.collections["opportunities"].get(index).record["_contact"]
        return {"opportunityId": uid("opportunities", index), "candidateId": uid("contacts", contact),
                "contactId": uid("contacts", contact), **extra}

    def _webhook(self, event: str, data: dict) -> None:
        """Deliver a signed webhook in Lever's format (retried up to 5 times, in the background)."""
        url = self.state.webhook_url
        if not url:
            return
        triggered_at = ms(utcnow())
        token = secrets.token_hex(16)
        body = {"triggeredAt": triggered_at, "event": event, "token": token,
                "signature": signature(self.signature_token, token, triggered_at), "data": data}
        self.webhooks_sent.append(body)

        def deliver() -> None:
            for attempt in range(6):
                try:
                    if requests.post(url, json=body, timeout=5).status_code < 300:
                        return
                except requests.RequestException:
                    pass
                time.sleep(min(0.2 * 2 ** attempt, 5))
        threading.Thread(target=deliver, name="lever-webhook", daemon=True).start()

    def truth(self, object_name: str) -> list[dict]:
        collection = self.collections[object_name]
        opportunities = self.collections["opportunities"]
        out = []
        for index in range(collection.size):
            entry = collection.get(index)
            deleted = entry.deleted_at is not None
            record = self.render(object_name, index, entry)
            if object_name in ("interviews", "offers"):
                opp = entry.record["_opp"]
                deleted = deleted or not opportunities.is_alive(opp)
                record["opportunityId"] = uid("opportunities", opp)  # truth only: the API omits it
            out.append({"id": collection.id_of(index), "deleted": deleted,
                        "updated_at": ms(entry.modified_at), "record": record})
        return out
