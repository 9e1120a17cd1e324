"""HubSpot CRM v3 simulator (API notes: sources/hubspot/README.md).

Served: `/crm/v3/objects/{type}` (and the date-versioned `/crm/objects/2026-03/{type}`) list with
`limit` (capped at 100) / `after` / `properties` / `associations` / `archived`; `/search` with filter
groups, one sort, `limit` ≤ 200 and the 10,000-result cap; `/batch/read`; single-record GET; owners;
deal pipelines (no paging); property definitions (`/crm/v3/properties/{type}`) and custom-object
schemas (`/crm/v3/schemas`, none); the ten-second burst limit (429 + HubSpot's body, `policyName`) and the
5/s search limit; 401 bodies; the OAuth v1/v3/2026-03 token endpoints with 30-minute tokens.
Writes (single, batch create/update/upsert, write log, injectable failures): `hubspot_writes.py`.
App webhooks to `state.webhook_url` on contact/company/deal changes: one v3-signed batch per mutation
(client secret), retried up to 10 times unless answered 400/401/403/404/405.
All property values are strings, as HubSpot sends them.
"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.datagen import INDUSTRIES, JOB_TITLES, Faker
from canonry.sandbox.engine import (
    PageCache,
    RateWindow,
    SandboxState,
    bearer_token,
    bytes_response,
    json_response,
    utcnow,
)
from canonry.sandbox.hubspot_properties import CUSTOM_PROPERTIES, CustomProperties
from canonry.sandbox.hubspot_writes import HubSpotWriteMixin, WriteFailure
from canonry.sandbox.oauth_server import OAuthClient, OAuthError, OAuthServer
from canonry.sandbox.webhooks import HUBSPOT_ATTEMPTS, HUBSPOT_NO_RETRY, WebhookSender, hubspot_batch

SEARCH_RESULT_CAP = 10_000
LIST_PAGE_MAX = 100
SEARCH_PAGE_MAX = 200
DEFAULT_CLIENT_ID = "canonry-hubspot-client"
DEFAULT_CLIENT_SECRET = "sandbox-hubspot-client-secret"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"

# objectType -> (id offset, modification property, default properties)
OBJECT_TYPES: dict[str, tuple[int, str, tuple[str, ...]]] = {
    "contacts": (100_000_000, "lastmodifieddate",
                 ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")),
    "companies": (200_000_000, "hs_lastmodifieddate",
                  ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name")),
    "deals": (300_000_000, "hs_lastmodifieddate",
              ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
               "hs_object_id", "pipeline")),
    # Engagement objects: only hs_createdate / hs_lastmodifieddate / hs_object_id by default.
    "notes": (400_000_000, "hs_lastmodifieddate", ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")),
    "tasks": (500_000_000, "hs_lastmodifieddate", ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")),
    "calls": (600_000_000, "hs_lastmodifieddate", ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")),
    "meetings": (700_000_000, "hs_lastmodifieddate", ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")),
    "emails": (800_000_000, "hs_lastmodifieddate", ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")),
}
ENGAGEMENTS = ("notes", "tasks", "calls", "meetings", "emails")
TYPE_IDS = {"0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-46": "notes", "0-27": "tasks",
            "0-48": "calls", "0-47": "meetings", "0-49": "emails"}
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal", "notes": "note", "tasks": "task",
            "calls": "call", "meetings": "meeting", "emails": "email"}
TASK_STATUSES = ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")
LEAD_SOURCES = ("ORGANIC_SEARCH", "PAID_SEARCH", "REFERRALS", "SOCIAL_MEDIA", "OFFLINE", "DIRECT_TRAFFIC")
OWNER_OFFSET = 50_000
LIFECYCLE_STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                    "customer", "evangelist", "other")
PIPELINES = [
    {"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "stages": [
        ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
        ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
        ("presentationscheduled", "Presentation Scheduled", "0.6", False),
        ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", False),
        ("contractsent", "Contract Sent", "0.9", False),
        ("closedwon", "Closed Won", "1.0", True),
        ("closedlost", "Closed Lost", "0.0", True),
    ]},
    {"id": "enterprise", "label": "Enterprise Pipeline", "displayOrder": 1, "stages": [
        ("ent_discovery", "Discovery", "0.1", False),
        ("ent_proposal", "Proposal", "0.5", False),
        ("ent_won", "Won", "1.0", True),
        ("ent_lost", "Lost", "0.0", True),
    ]},
]
STAGES = [(p["id"], s) for p in PIPELINES for s in p["stages"]]


@lru_cache(maxsize=8192)
def _iso(ts: datetime) -> str:
    if ts.tzinfo is not UTC:
        ts = ts.astimezone(UTC)
    # Same text as strftime("%Y-%m-%dT%H:%M:%S.") + milliseconds + "Z", at a third of the cost.
    return (f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}."
            f"{ts.microsecond // 1000:03d}Z")


def _parse_time(value: str) -> datetime:
    """HubSpot accepts epoch milliseconds or ISO-8601 in date filters."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (parsed here: no python-multipart dependency)."""
    return dict(parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True))


class HubSpotSimulator(HubSpotWriteMixin):
    slug = "hubspot"

    def __init__(self, state: SandboxState, burst_limit: int = 100, search_per_second: int = 5,
                 client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
                 redirect_uris: tuple[str, ...] = (DEFAULT_REDIRECT_URI,), rotate_refresh_tokens: bool = False,
                 access_ttl: int = 1800, custom_properties: bool = False) -> None:
        self.state = state
        scale = state.scale
        self.owner_count = max(5, min(200, scale // 20))
        # Custom property definitions are always served; records carry values only with
        # `custom_properties=True` (canonry/sandbox/hubspot_properties.py).
        self.custom = CustomProperties(state.seed, OWNER_OFFSET + 1, self.owner_count)
        self.custom_values = custom_properties
        self.faker = {name: Faker(state.seed, f"hubspot.{name}") for name in (*OBJECT_TYPES, "owners")}
        self.collections: dict[str, Collection] = {
            name: Collection(name, scale, self._factory(name), self._id_of(offset), self._parse_id(offset))
            for name, (offset, _, _) in OBJECT_TYPES.items()
        }
        self.collections["owners"] = Collection("owners", self.owner_count, self._owner,
                                                self._id_of(OWNER_OFFSET), self._parse_id(OWNER_OFFSET))
        self.burst = RateWindow(burst_limit, 10.0)
        self.search_window = RateWindow(search_per_second, 1.0)
        # The registered OAuth app (client, secret, exact redirect URIs) is configurable per sandbox.
        self.oauth = OAuthServer(state, access_ttl=access_ttl, token_prefix="hs",
                                 rotate_refresh_tokens=rotate_refresh_tokens)
        self.oauth.register(OAuthClient(client_id, client_secret, tuple(redirect_uris)))
        self.writes: list[dict] = []
        self.write_failures: list[WriteFailure] = []
        self.page_cache = PageCache()
        # App webhooks (v3-signed with the app's client secret) to state.webhook_url on contact, company
        # and deal changes: canonry/sandbox/webhooks.py.
        self.client_secret = client_secret
        self.webhooks = WebhookSender("hubspot", HUBSPOT_ATTEMPTS, HUBSPOT_NO_RETRY)
        self.event_ids = itertools.count(1)

    # -- data ---------------------------------------------------------------------------------
    @staticmethod
    def _id_of(offset: int) -> Callable[[int], str]:
        return lambda index: str(offset + index + 1)

    @staticmethod
    def _parse_id(offset: int) -> Callable[[str], int | None]:
        def parse(remote_id: str) -> int | None:
            return int(remote_id) - offset - 1 if remote_id.isdigit() else None
        return parse

    def _factory(self, name: str) -> Callable[[int], dict]:
        if name in ENGAGEMENTS:
            return lambda index: self._engagement(name, index)
        base = {"contacts": self._contact, "companies": self._company, "deals": self._deal}[name]
        if not self.custom_values or name not in CUSTOM_PROPERTIES:
            return base

        def with_custom(index: int) -> dict:
            record = base(index)
            record["properties"].update(self.custom.values(name, index))
            return record
        return with_custom

    def _engagement(self, kind: str, index: int) -> dict:
        """Notes, tasks, calls, meetings and emails, each associated to a contact, its company and a deal."""
        fake = self.faker[kind]
        scale = max(1, self.state.scale)
        day = f"2025-{fake.number(index, 'month', 12) + 1:02d}-{fake.number(index, 'day', 28) + 1:02d}"
        stamp = f"{day}T{fake.number(index, 'hour', 9) + 9:02d}:00:00.000Z"
        props = {"hs_timestamp": stamp, "hubspot_owner_id": self._owner_id(index, fake)}
        words = fake.words(index, "body", 6)
        if kind == "notes":
            props["hs_note_body"] = f"<p>{words}</p>"
        elif kind == "tasks":
            status = fake.pick(index, "status", TASK_STATUSES)
            props.update(hs_task_subject=f"Follow up: {fake.words(index, 'subject', 2)}", hs_task_body=words,
                         hs_task_status=status, hs_task_priority=fake.pick(index, "priority", ("LOW", "MEDIUM", "HIGH")),
                         hs_task_completion_date=f"{day}T17:00:00.000Z" if status == "COMPLETED" else None)
        elif kind == "calls":
            props.update(hs_call_title=f"Call about {fake.words(index, 'subject', 2)}", hs_call_body=words,
                         hs_call_direction=fake.pick(index, "direction", ("INBOUND", "OUTBOUND")),
                         hs_call_duration=str((fake.number(index, "duration", 55) + 5) * 60_000),
                         hs_call_status="COMPLETED")
        elif kind == "meetings":
            props.update(hs_meeting_title=f"Meeting: {fake.words(index, 'subject', 2)}", hs_meeting_body=words,
                         hs_meeting_start_time=stamp, hs_meeting_end_time=f"{stamp[:11]}{int(stamp[11:13]) + 1:02d}"
                                                                            ":00:00.000Z",
                         hs_meeting_outcome=fake.pick(index, "outcome", ("SCHEDULED", "COMPLETED", "NO_SHOW")))
        elif kind == "emails":
            props.update(hs_email_subject=f"Re: {fake.words(index, 'subject', 2)}", hs_email_text=words,
                         hs_email_direction=fake.pick(index, "direction", ("EMAIL", "INCOMING_EMAIL")))
        contact = fake.number(index, "contact", scale)
        company = self.faker["contacts"].number(contact, "company", scale)
        return {"properties": props, "associations": {
            "contacts": [str(OBJECT_TYPES["contacts"][0] + contact + 1)],
            "companies": [str(OBJECT_TYPES["companies"][0] + company + 1)],
            "deals": [str(OBJECT_TYPES["deals"][0] + fake.number(index, "deal", scale) + 1)],
        }}

    def _owner_id(self, index: int, fake: Faker) -> str:
        return str(OWNER_OFFSET + fake.number(index, "owner", self.owner_count) + 1)

    def _contact(self, index: int) -> dict:
        fake = self.faker["contacts"]
        first, last = fake.person(index)
        city, state, country, zip_code = fake.city(index)
        company_index = fake.number(index, "company", max(1, self.state.scale))
        props = {
            "email": fake.email(index, first, last), "firstname": first, "lastname": last,
            "phone": fake.phone(index), "jobtitle": fake.pick(index, "title", JOB_TITLES),
            "lifecyclestage": fake.pick(index, "stage", LIFECYCLE_STAGES),
            "hubspot_owner_id": self._owner_id(index, fake),
            "associatedcompanyid": str(OBJECT_TYPES["companies"][0] + company_index + 1),
            "address": fake.street(index), "city": city, "state": state, "country": country, "zip": zip_code,
            "hs_lead_status": fake.pick(index, "lead_status", ("NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL",
                                                               "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED",
                                                               "BAD_TIMING")),
            "hs_analytics_source": fake.pick(index, "source", LEAD_SOURCES),
        }
        return {"properties": props}

    def _company(self, index: int) -> dict:
        fake = self.faker["companies"]
        name = fake.company(index)
        city, state, country, zip_code = fake.city(index)
        props = {
            "name": name, "domain": name.lower().replace(" ", "-") + ".example.com",
            "industry": fake.pick(index, "industry", INDUSTRIES),
            "numberofemployees": str(fake.number(index, "employees", 5000) + 1),
            "phone": fake.phone(index), "address": fake.street(index), "city": city, "state": state,
            "country": country, "zip": zip_code, "description": fake.words(index, "desc", 4),
            "hubspot_owner_id": self._owner_id(index, fake),
        }
        return {"properties": props}

    def _deal(self, index: int) -> dict:
        fake = self.faker["deals"]
        pipeline, (stage_id, _, probability, closed) = fake.pick(index, "stage", tuple(STAGES))
        scale = max(1, self.state.scale)
        props = {
            "dealname": f"{fake.words(index, 'name', 2).title()} deal {index}",
            "amount": f"{fake.number(index, 'amount', 500_000) + 1000}.{fake.number(index, 'cents', 100):02d}",
            "deal_currency_code": fake.pick(index, "currency", ("USD", "EUR", "GBP")),
            "closedate": f"2025-{fake.number(index, 'month', 12) + 1:02d}-{fake.number(index, 'day', 28) + 1:02d}"
                         "T00:00:00.000Z",
            "pipeline": pipeline, "dealstage": stage_id, "hs_deal_stage_probability": probability,
            "hs_is_closed": str(closed).lower(),
            "hs_is_closed_won": str(stage_id in ("closedwon", "ent_won")).lower(),
            "hubspot_owner_id": self._owner_id(index, fake),
            "description": fake.words(index, "desc", 5),
        }
        return {
            "properties": props,
            "associations": {
                "companies": [str(OBJECT_TYPES["companies"][0] + fake.number(index, "company", scale) + 1)],
                "contacts": [str(OBJECT_TYPES["contacts"][0] + fake.number(index, "contact", scale) + 1)],
            },
        }

    def _owner(self, index: int) -> dict:
        fake = self.faker["owners"]
        first, last = fake.person(index)
        return {"email": fake.email(index, first, last, "sales.example.com"), "firstName": first,
                "lastName": last, "userId": 9_000_000 + index, "type": "PERSON",
                "teams": [{"id": str(100 + index % 3), "name": f"Team {index % 3}", "primary": True}]}

    # -- rendering ----------------------------------------------------------------------------
    def render(self, name: str, index: int, entry: Entry, properties: list[str] | None,
               associations: list[str] | None = None) -> dict:
        collection = self.collections[name]
        object_id = collection.id_of(index)
        modified_prop = OBJECT_TYPES[name][1]
        created, modified = _iso(entry.created_at), _iso(entry.modified_at)
        all_props = dict(entry.record["properties"])
        created_prop = "hs_createdate" if name in ENGAGEMENTS else "createdate"
        all_props.update({created_prop: created, modified_prop: modified, "hs_object_id": object_id})
        wanted = properties if properties else OBJECT_TYPES[name][2]
        props = {key: all_props.get(key) for key in wanted if key in all_props or key in OBJECT_TYPES[name][2]}
        body = {
            "id": object_id, "properties": props, "createdAt": created,
            "updatedAt": modified, "archived": entry.deleted_at is not None,
        }
        if entry.deleted_at is not None:
            body["archivedAt"] = _iso(entry.deleted_at)
        if associations:
            body["associations"] = self._associations(name, all_props, entry, associations)
        return body

    def _associations(self, name: str, props: dict, entry: Entry, wanted: list[str]) -> dict:
        linked: dict[str, list[str]] = dict(entry.record.get("associations", {}))
        if name == "contacts" and props.get("associatedcompanyid"):
            linked["companies"] = [props["associatedcompanyid"]]
        out = {}
        for target in wanted:
            ids = linked.get(target)
            if ids:
                kind = f"{SINGULAR[name]}_to_{SINGULAR.get(target, target)}"
                out[target] = {"results": [{"id": i, "type": kind} for i in ids]}
        return out

    def render_owner(self, index: int, entry: Entry) -> dict:
        body = {"id": self.collections["owners"].id_of(index), **entry.record,
                "userIdIncludingInactive": entry.record["userId"], "createdAt": _iso(entry.created_at),
                "updatedAt": _iso(entry.modified_at), "archived": entry.deleted_at is not None}
        return body

    # -- errors -------------------------------------------------------------------------------
    def error_response(self, status: int, message: str, kind: str) -> Response:
        correlation = str(uuid.uuid4())
        if kind == "rate_limited":
            return json_response({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                                  "errorType": "RATE_LIMIT", "correlationId": correlation,
                                  "policyName": "TEN_SECONDLY_ROLLING", "requestId": correlation}, status)
        if kind == "unauthorized":
            return json_response({"status": "error", "message": message, "correlationId": correlation,
                                  "category": "INVALID_AUTHENTICATION" if "expired" not in message
                                  else "EXPIRED_AUTHENTICATION"}, 401)
        category = {400: "VALIDATION_ERROR", 404: "OBJECT_NOT_FOUND", 403: "MISSING_SCOPES"}.get(status, "INTERNAL_ERROR")
        return json_response({"status": "error", "message": message, "correlationId": correlation,
                              "category": category}, status)

    def _guard(self, request: Request, search: bool = False) -> tuple[Response | None, dict[str, str]]:
        """Authentication and rate limits; returns (error response or None, rate-limit headers)."""
        token_state = self.oauth.token_state(bearer_token(request))
        if token_state == "invalid":
            return self.error_response(401, "Authentication credentials not found. This API supports OAuth 2.0 "
                                       "authentication and you can find more details at "
                                       "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                                       "unauthorized"), {}
        if token_state == "expired":
            return self.error_response(401, "The OAuth token used to make this call expired.", "unauthorized"), {}
        if not self.state.rate_limits:
            return None, {}
        if search:
            allowed, _ = self.search_window.take()
            if not allowed:
                correlation = str(uuid.uuid4())
                return json_response({"status": "error", "message": "You have reached your secondly limit.",
                                      "errorType": "RATE_LIMIT", "correlationId": correlation,
                                      "policyName": "SECONDLY", "requestId": correlation}, 429), {}
            return None, {}
        allowed, remaining = self.burst.take()
        headers = {"X-HubSpot-RateLimit-Max": str(self.burst.limit),
                   "X-HubSpot-RateLimit-Remaining": str(remaining),
                   "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}
        if not allowed:
            return self.error_response(429, "", "rate_limited"), headers
        return None, headers

    # -- routes -------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        routes = []
        for prefix in ("/crm/v3/objects", "/crm/objects/2026-03"):
            routes += [
                Route(prefix + "/{object_type}", self.list_objects, methods=["GET"]),
                Route(prefix + "/{object_type}/search", self.search, methods=["POST"]),
                Route(prefix + "/{object_type}/batch/read", self.batch_read, methods=["POST"]),
                Route(prefix + "/{object_type}/{object_id}", self.get_object, methods=["GET"]),
            ]
        routes += [
            Route("/crm/v4/associations/{from_type}/{to_type}/batch/read", self.associations_batch_read,
                  methods=["POST"]),
            Route("/crm/v3/owners", self.list_owners, methods=["GET"]),
            Route("/crm/v3/owners/", self.list_owners, methods=["GET"]),
            Route("/crm/v3/pipelines/{object_type}", self.list_pipelines, methods=["GET"]),
            Route("/crm/v3/properties/{object_type}", self.list_properties, methods=["GET"]),
            Route("/crm/v3/properties/{object_type}/{property_name}", self.update_property, methods=["PATCH"]),
            Route("/crm/v3/schemas", self.list_schemas, methods=["GET"]),
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/v1/token", self.token, methods=["POST"]),
            Route("/oauth/v3/token", self.token, methods=["POST"]),
            Route("/oauth/2026-03/token", self.token, methods=["POST"]),
            Route("/oauth/2026-03/token/revoke", self.revoke, methods=["POST"]),
            Route("/oauth/v1/refresh-tokens/{token}", self.revoke, methods=["DELETE"]),
        ]
        return routes + self.write_routes()

    def _object_name(self, request: Request) -> str | None:
        raw = request.path_params["object_type"]
        name = TYPE_IDS.get(raw, raw)
        return name if name in OBJECT_TYPES else None

    @staticmethod
    def _csv_params(request: Request, key: str) -> list[str]:
        values: list[str] = []
        for raw in request.query_params.getlist(key):
            values += [v for v in raw.split(",") if v]
        return values

    async def list_objects(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        name = self._object_name(request)
        if name is None:
            return self.error_response(400, f"Unable to infer object type from: {request.path_params['object_type']}",
                                       "validation")
        try:
            limit = min(int(request.query_params.get("limit", "10")), LIST_PAGE_MAX)
            start = int(request.query_params.get("after", "0") or 0)
        except ValueError:
            return self.error_response(400, "Invalid input JSON: limit and after must be integers", "validation")
        if limit < 1:
            return self.error_response(400, "limit must be at least 1", "validation")
        collection = self.collections[name]
        archived = request.query_params.get("archived", "false").lower() == "true"
        properties = self._csv_params(request, "properties")
        associations = self._csv_params(request, "associations")
        key = (name, start, limit, archived, tuple(properties), tuple(associations), request.url.path)
        if self.state.page_cache:
            cached = self.page_cache.get(key, collection.version)
            if cached is not None:
                return bytes_response(cached, headers=headers)
        version = collection.version
        source: Iterator[tuple[int, Entry]] = (
            ((i, e) for i, e in collection.iter_deleted() if i >= start) if archived else collection.iter_alive(start)
        )
        results, next_index = [], None
        for index, entry in source:
            if len(results) == limit:
                next_index = index
                break
            results.append(self.render(name, index, entry, properties, associations))
        body: dict = {"results": results}
        if next_index is not None:
            link = f"{self.state.base_url}{request.url.path}?" + urlencode({"after": str(next_index)})
            body["paging"] = {"next": {"after": str(next_index), "link": link}}
        rendered = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
        if self.state.page_cache:
            self.page_cache.put(key, version, rendered)
        return bytes_response(rendered, headers=headers)

    async def get_object(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        name = self._object_name(request)
        if name is None:
            return self.error_response(400, "Unable to infer object type", "validation")
        collection = self.collections[name]
        index = collection.index_of(request.path_params["object_id"])
        archived = request.query_params.get("archived", "false").lower() == "true"
        if index is None or collection.is_alive(index) == archived:
            return self.error_response(404, "Object not found.", "not_found")
        return json_response(self.render(name, index, collection.get(index), self._csv_params(request, "properties"),
                                         self._csv_params(request, "associations")), headers=headers)

    async def batch_read(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        name = self._object_name(request)
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return self.error_response(400, "Invalid input JSON on line 1", "validation")
        inputs = body.get("inputs", [])
        if name is None or len(inputs) > 100:
            return self.error_response(400, "batch read accepts at most 100 inputs", "validation")
        collection = self.collections[name]
        now = utcnow()
        results, errors = [], []
        for item in inputs:
            index = collection.index_of(str(item.get("id", "")))
            if index is None or not collection.is_alive(index):
                errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                               "message": f"Could not get some {name} objects, they may be deleted or not exist.",
                               "context": {"ids": [str(item.get("id"))]}})
                continue
            results.append(self.render(name, index, collection.get(index), body.get("properties")))
        payload = {"status": "COMPLETE", "results": results, "startedAt": _iso(now), "completedAt": _iso(now)}
        if errors:
            payload.update(numErrors=len(errors), errors=errors)
        return json_response(payload, 207 if errors else 200, headers=headers)

    async def associations_batch_read(self, request: Request) -> Response:
        """v4 associations: `{inputs:[{id}]}` -> `{results:[{from:{id}, to:[{toObjectId, associationTypes}]}]}`."""
        error, headers = self._guard(request)
        if error:
            return error
        from_type = TYPE_IDS.get(request.path_params["from_type"], request.path_params["from_type"])
        to_type = TYPE_IDS.get(request.path_params["to_type"], request.path_params["to_type"])
        if from_type not in OBJECT_TYPES or to_type not in OBJECT_TYPES:
            return self.error_response(400, "Unknown object type", "validation")
        body = await request.json()
        inputs = body.get("inputs", [])
        if len(inputs) > 1000:
            return self.error_response(400, "batch read accepts at most 1000 inputs", "validation")
        collection = self.collections[from_type]
        results = []
        for item in inputs:
            index = collection.index_of(str(item.get("id", "")))
            if index is None:
                continue
            entry = collection.get(index)
            linked = self._associations(from_type, entry.record["properties"], entry, [to_type]).get(to_type)
            if linked:
                results.append({"from": {"id": collection.id_of(index)}, "to": [
                    {"toObjectId": int(r["id"]), "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": None}]} for r in linked["results"]]})
        return json_response({"status": "COMPLETE", "results": results}, headers=headers)

    async def search(self, request: Request) -> Response:
        error, _ = self._guard(request, search=True)
        if error:
            return error
        name = self._object_name(request)
        if name is None:
            return self.error_response(400, "Unable to infer object type", "validation")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return self.error_response(400, "Invalid input JSON on line 1", "validation")
        limit = int(body.get("limit", 10))
        offset = int(body.get("after", 0) or 0)
        if limit > SEARCH_PAGE_MAX:
            return self.error_response(400, f"limit must be less than or equal to {SEARCH_PAGE_MAX}", "validation")
        if offset + limit > SEARCH_RESULT_CAP and offset >= SEARCH_RESULT_CAP:
            return self.error_response(400, "The query has exceeded the maximum number of results (10000). "
                                       "Refine your filters.", "validation")
        groups = body.get("filterGroups", [])
        if len(groups) > 5 or sum(len(g.get("filters", [])) for g in groups) > 18:
            return self.error_response(400, "Too many filter groups or filters", "validation")
        sorts = body.get("sorts", [])
        if len(sorts) > 1:
            return self.error_response(400, "Only one sort is allowed", "validation")
        modified_prop = OBJECT_TYPES[name][1]
        collection = self.collections[name]
        since = self._lower_bound(groups, modified_prop)
        properties = body.get("properties") or None
        if since is not None and self._only_modified_since(groups, sorts, modified_prop):
            # The incremental-sync query (one `modified >= t` filter, ascending by it): the store already
            # yields exactly those records in that order, so only the page is rendered. Rendering every
            # match for every page made a 1%-of-1M incremental sync wait on the simulator (O(matches)
            # per page); the answer is the same as the general path's.
            total = collection.count_modified_since(since)
            page = [self.render(name, i, e, properties)
                    for i, e in itertools.islice(collection.iter_modified_since(since), offset, offset + limit)]
            payload = {"total": total, "results": page}
            if offset + limit < total and offset + limit <= SEARCH_RESULT_CAP:
                payload["paging"] = {"next": {"after": str(offset + limit)}}
            return json_response(payload)
        candidates = collection.iter_modified_since(since) if since else collection.iter_alive()
        predicate = self._predicate(name, groups)
        sort = sorts[0] if sorts else None
        descending = bool(sort and str(sort.get("direction", "ASCENDING")).upper().startswith("DESC"))
        rendered = ((i, e, self.render(name, i, e, None)) for i, e in candidates)
        matches = (r for r in rendered if predicate(r[2]))
        if sort and (sort.get("propertyName") not in (modified_prop, "lastmodifieddate", "hs_lastmodifieddate")
                     or descending):
            key = sort.get("propertyName")
            ordered = sorted(matches, key=lambda r: (r[2]["properties"].get(key) or "", r[0]), reverse=descending)
            matches = iter(ordered)
        elif not sort:
            ordered = sorted(matches, key=lambda r: (r[1].created_at, r[0]))
            matches = iter(ordered)
        total, page, has_more = 0, [], False
        for i, entry, _ in matches:
            if offset <= total < offset + limit:
                page.append(self.render(name, i, entry, properties))
            elif total >= offset + limit:
                has_more = True
            total += 1
        payload: dict = {"total": total, "results": page}
        if has_more and offset + limit <= SEARCH_RESULT_CAP:
            payload["paging"] = {"next": {"after": str(offset + limit)}}
        return json_response(payload)

    @staticmethod
    def _only_modified_since(groups: list[dict], sorts: list[dict], modified_prop: str) -> bool:
        """One group with one `GTE` filter on the object's modification property, sorted ascending by it."""
        if len(groups) != 1 or len(groups[0].get("filters", [])) != 1 or len(sorts) != 1:
            return False
        only, sort = groups[0]["filters"][0], sorts[0]
        return (only.get("propertyName") == modified_prop and only.get("operator") == "GTE"
                and sort.get("propertyName") == modified_prop
                and not str(sort.get("direction", "ASCENDING")).upper().startswith("DESC"))

    @staticmethod
    def _lower_bound(groups: list[dict], modified_prop: str) -> datetime | None:
        """A lower bound on the modification time every group demands (lets the store skip old records)."""
        bounds = []
        for group in groups:
            group_bound = None
            for f in group.get("filters", []):
                if f.get("propertyName") in (modified_prop, "lastmodifieddate", "hs_lastmodifieddate") \
                        and f.get("operator") in ("GT", "GTE", "BETWEEN", "EQ"):
                    group_bound = _parse_time(str(f.get("value")))
            if group_bound is None:
                return None
            bounds.append(group_bound)
        return min(bounds) if bounds else None

    @staticmethod
    def _predicate(name: str, groups: list[dict]) -> Callable[[dict], bool]:
        if not groups:
            return lambda obj: True
        time_props = {"lastmodifieddate", "hs_lastmodifieddate", "createdate", "closedate"}

        def value_of(obj: dict, prop: str):
            value = obj["properties"].get(prop)
            if prop == "hs_object_id":
                value = obj["id"]
            return value

        def compare(op: str, actual, expected, prop: str, high=None) -> bool:
            if op == "HAS_PROPERTY":
                return actual not in (None, "")
            if op == "NOT_HAS_PROPERTY":
                return actual in (None, "")
            if actual is None:
                return op in ("NEQ", "NOT_IN")
            if prop in time_props:
                actual_cmp, conv = _parse_time(actual), _parse_time
            else:
                try:
                    actual_cmp, conv = float(actual), float
                except ValueError:
                    actual_cmp, conv = str(actual).lower(), (lambda v: str(v).lower())
            if op in ("IN", "NOT_IN"):
                found = any(actual_cmp == conv(v) for v in expected)
                return found if op == "IN" else not found
            if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
                token = str(expected).lower().replace("*", "")
                found = token in str(actual).lower()
                return found if op == "CONTAINS_TOKEN" else not found
            target = conv(expected)
            return {
                "EQ": actual_cmp == target, "NEQ": actual_cmp != target, "LT": actual_cmp < target,
                "LTE": actual_cmp <= target, "GT": actual_cmp > target, "GTE": actual_cmp >= target,
                "BETWEEN": target <= actual_cmp <= conv(high) if high is not None else False,
            }.get(op, False)

        def matches(obj: dict) -> bool:
            for group in groups:
                if all(compare(f.get("operator", "EQ"), value_of(obj, f.get("propertyName", "")),
                               f.get("values") if f.get("operator") in ("IN", "NOT_IN") else f.get("value"),
                               f.get("propertyName", ""), f.get("highValue"))
                       for f in group.get("filters", [])):
                    return True
            return False

        return matches

    async def list_owners(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        limit = min(int(request.query_params.get("limit", "100")), 500)
        start = int(request.query_params.get("after", "0") or 0)
        archived = request.query_params.get("archived", "false").lower() == "true"
        collection = self.collections["owners"]
        source = ((i, e) for i, e in collection.iter_deleted() if i >= start) if archived \
            else collection.iter_alive(start)
        results, next_index = [], None
        for index, entry in source:
            if len(results) == limit:
                next_index = index
                break
            results.append(self.render_owner(index, entry))
        body: dict = {"results": results}
        if next_index is not None:
            body["paging"] = {"next": {"after": str(next_index),
                                       "link": f"{self.state.base_url}/crm/v3/owners?after={next_index}"}}
        return json_response(body, headers=headers)

    async def list_pipelines(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        if request.path_params["object_type"] not in ("deals", "0-3"):
            return json_response({"results": []}, headers=headers)
        return json_response({"results": self.pipelines()}, headers=headers)

    async def list_properties(self, request: Request) -> Response:
        """`GET /crm/v3/properties/{objectType}`: the property definitions (name, type, fieldType)."""
        error, headers = self._guard(request)
        if error:
            return error
        name = self._object_name(request)
        if name is None:
            return self.error_response(400, "Unable to infer object type", "validation")
        return json_response({"results": self.property_definitions(name)}, headers=headers)

    def property_definitions(self, name: str) -> list[dict]:
        sample = self.collections[name].factory(0)["properties"]
        names = sorted({*sample, *OBJECT_TYPES[name][2]})
        out = []
        for prop in names:
            if prop in ("createdate", "lastmodifieddate", "hs_lastmodifieddate", "closedate", "notes_last_updated"):
                kind, field_type = "datetime", "date"
            elif prop in ("amount", "numberofemployees", "hs_deal_stage_probability", "hs_object_id"):
                kind, field_type = "number", "number"
            elif prop in ("hs_is_closed", "hs_is_closed_won"):
                kind, field_type = "bool", "booleancheckbox"
            else:
                kind, field_type = "string", "text"
            out.append({"name": prop, "label": prop.replace("_", " ").title(), "type": kind,
                        "fieldType": field_type, "groupName": f"{name[:-1]}information", "description": "",
                        "options": [], "displayOrder": -1, "calculated": False, "externalOptions": False,
                        "hasUniqueValue": prop == "hs_object_id", "hidden": False, "formField": True,
                        "hubspotDefined": True, "createdAt": "2024-06-01T00:00:00.000Z",
                        "updatedAt": "2024-06-01T00:00:00.000Z", "archived": False})
        custom = self.custom.definitions.get(name, [])
        return [p for p in out if p["name"] not in {c["name"] for c in custom}] + [dict(c) for c in custom]

    async def update_property(self, request: Request) -> Response:
        """`PATCH /crm/v3/properties/{objectType}/{propertyName}` with `{label}`: relabels a custom property
        (its internal name, the key of its values, never changes)."""
        error, headers = self._guard(request)
        if error:
            return error
        name = self._object_name(request)
        try:
            body = await request.json()
        except ValueError:
            body = None
        label = body.get("label") if isinstance(body, dict) else None
        if name is None or not isinstance(label, str) or not label.strip():
            return self.error_response(400, "A known object type and a non-empty label are required", "validation")
        definition = self.custom.relabel(name, request.path_params["property_name"], label.strip(), utcnow())
        if definition is None:
            return self.error_response(404, f"Property {request.path_params['property_name']} does not exist "
                                       "or is HubSpot-defined", "not_found")
        return json_response(dict(definition), headers=headers)

    async def list_schemas(self, request: Request) -> Response:
        """`GET /crm/v3/schemas`: custom object schemas (this portal has none)."""
        error, headers = self._guard(request)
        if error:
            return error
        return json_response({"results": []}, headers=headers)

    @staticmethod
    def pipelines() -> list[dict]:
        created = "2024-06-01T00:00:00.000Z"
        return [{
            "id": p["id"], "label": p["label"], "displayOrder": p["displayOrder"], "archived": False,
            "createdAt": created, "updatedAt": created,
            "stages": [{"id": sid, "label": label, "displayOrder": n, "archived": False, "createdAt": created,
                        "updatedAt": created, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                        "metadata": {"probability": prob, "isClosed": str(closed).lower()}}
                       for n, (sid, label, prob, closed) in enumerate(p["stages"])],
        } for p in PIPELINES]

    # -- OAuth --------------------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        try:
            code = self.oauth.authorize(q.get("client_id", ""), q.get("redirect_uri", ""), q.get("scope", ""),
                                        q.get("code_challenge"), q.get("code_challenge_method"))
        except OAuthError as exc:
            return json_response({"status": "BAD_REQUEST", "message": exc.description, "error": exc.error}, 400)
        params = {"code": code}
        if q.get("state") is not None:
            params["state"] = q["state"]
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode(params)}", status_code=302)

    async def token(self, request: Request) -> Response:
        form = await _form(request)
        try:
            grant = form.get("grant_type")
            if grant == "authorization_code":
                issued = self.oauth.exchange_code(form)
            elif grant == "refresh_token":
                issued = self.oauth.refresh(form)
            else:
                raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")
        except OAuthError as exc:
            status = "BAD_REFRESH_TOKEN" if form.get("grant_type") == "refresh_token" else "BAD_AUTH_CODE"
            return json_response({"error": exc.error, "error_description": exc.description, "status": status,
                                  "message": exc.description}, exc.status)
        return json_response({"access_token": issued.access_token, "refresh_token": issued.refresh_token,
                              "expires_in": issued.expires_in, "token_type": "bearer", "hub_id": 62515,
                              "user_id": 9_000_000, "scopes": list(issued.scopes), "token_use": "access_token"})

    async def revoke(self, request: Request) -> Response:
        token = request.path_params.get("token") or (await _form(request)).get("token", "")
        self.oauth.revoke(token)
        return Response(status_code=204)

    # -- control ------------------------------------------------------------------------------
    def mutate(self, object_name: str, action: str, count: int, rng: random.Random,
               ids: list[str] | None) -> list[str]:
        collection = self.collections[object_name]
        now = utcnow()
        if action == "create":
            factory = collection.factory
            done = [collection.id_of(collection.create(self._fresh(object_name, factory), now))
                    for _ in range(count)]
            self._notify(object_name, action, done)
            return done
        indexes = collection.targets(action, count, rng, ids)
        done = []
        for index in indexes:
            now = utcnow()  # every change gets its own time, as real edits do
            if action == "update":
                collection.update(index, lambda rec, i=index, t=now: self._changed(object_name, rec, i, t), now)
            elif action == "delete":
                collection.delete(index, now)
            elif action == "restore":
                collection.restore(index, now)
            done.append(collection.id_of(index))
        self._notify(object_name, action, done)
        return done

    WEBHOOK_TYPES = {"contacts": "contact", "companies": "company", "deals": "deal"}
    WEBHOOK_ACTIONS = {"create": "creation", "update": "propertyChange", "delete": "deletion", "restore": "restore"}

    def _notify(self, object_name: str, action: str, ids: list[str]) -> None:
        """One batch per mutation, as HubSpot batches the events of a moment."""
        url, kind = self.state.webhook_url, self.WEBHOOK_TYPES.get(object_name)
        if not url or kind is None or not ids:
            return
        occurred = int(utcnow().timestamp() * 1000)
        events = [{"eventId": next(self.event_ids), "subscriptionId": 1, "portalId": 62515, "appId": 54321,
                   "occurredAt": occurred, "subscriptionType": f"{kind}.{self.WEBHOOK_ACTIONS[action]}",
                   "objectId": int(i), "changeSource": "API"} for i in ids]
        hubspot_batch(self.webhooks, url, self.client_secret, events)

    def _fresh(self, object_name: str, factory: Callable[[int], dict]) -> Callable[[int], dict]:
        def make(index: int) -> dict:
            if object_name == "owners":
                return self._owner(index)
            base = factory(index % max(1, self.state.scale))
            record = json.loads(json.dumps(base))
            props = record["properties"]
            if object_name == "contacts":
                first, last = self.faker["contacts"].person(index)
                props.update(firstname=first, lastname=last, email=self.faker["contacts"].email(index, first, last))
            elif object_name == "companies":
                props["name"] = self.faker["companies"].company(index)
            elif object_name == "deals":
                props["dealname"] = f"New deal {index}"
            return record
        return make

    @staticmethod
    def _changed(object_name: str, record: dict, index: int, now: datetime) -> dict:
        if object_name == "owners":
            record["lastName"] = record["lastName"] + " (updated)"
            return record
        props = record["properties"]
        stamp = now.strftime("%H%M%S%f")
        field_name = {"contacts": "jobtitle", "companies": "description", "deals": "description",
                      "notes": "hs_note_body", "tasks": "hs_task_body", "calls": "hs_call_body",
                      "meetings": "hs_meeting_body", "emails": "hs_email_text"}[object_name]
        props[field_name] = f"updated {stamp}"
        return record

    def truth(self, object_name: str) -> list[dict]:
        collection = self.collections[object_name]
        out = []
        for index in range(collection.size):
            entry = collection.get(index)
            if object_name == "owners":
                body = self.render_owner(index, entry)
            else:
                body = self.render(object_name, index, entry,
                                   list(entry.record["properties"]) + list(OBJECT_TYPES[object_name][2]))
            out.append({"id": collection.id_of(index), "deleted": entry.deleted_at is not None,
                        "updated_at": _iso(entry.modified_at), "record": body})
        return out

