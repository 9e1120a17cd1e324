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
  a custom field (`canonry/sandbox/pipedrive_fields.py`). Records carry custom field values only with
  the `custom_fields=True` option: v2 under `custom_fields` by key, v1 at the top level by key.
* Timestamps: v2 RFC3339 seconds (`2025-01-01T00:00:07Z`), v1 `YYYY-MM-DD HH:MM:SS` (UTC), leads ISO with
  milliseconds; lead ids are UUIDs, every other id an integer.
* Auth: an API token as `api_token` query parameter or `x-api-token` header, or an OAuth bearer token
  (`/oauth/authorize`, `/oauth/token` with HTTP Basic client authentication; 1-hour access tokens).
  A bad credential answers 401 `{success: false, error: "unauthorized access", errorCode: 401}`.
* Burst rate limit per rolling 2 s window: 429 with `x-ratelimit-limit/remaining/reset` headers and the
  same error body; every answer carries the `x-ratelimit-*` headers and `x-daily-requests-left`.
* Writes for reverse ETL: `POST/PATCH/DELETE /api/v2/{persons,organizations,deals}[/{id}]` and v1
  `POST/PUT/DELETE /v1/…`, recorded in a write log (`GET /_sandbox/pipedrive/writes`) with injectable
  per-record failures (`POST /_sandbox/pipedrive/write_failures`, or the `write_failures` option).
* Webhooks v2 to `state.webhook_url` on every change of persons, organizations, deals, activities, notes
  and leads: `{meta{action: create|change|delete, entity, entity_id, id, timestamp, attempt}, data,
  previous}` with HTTP Basic credentials (`webhook_user` / `webhook_password`), retried on non-2xx.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from canonry.sandbox.collection import BASE_EPOCH, Collection, Entry
from canonry.sandbox.datagen import INDUSTRIES, JOB_TITLES, Faker
from canonry.sandbox.engine import (
    CONTROL_PREFIX,
    RateWindow,
    SandboxState,
    bearer_token,
    json_response,
    utcnow,
)
from canonry.sandbox.oauth_server import OAuthClient, OAuthError, OAuthServer
from canonry.sandbox.pipedrive_fields import FIELD_ENDPOINTS, VALUE_COLLECTIONS, FieldDefinitions
from canonry.sandbox.webhook_registration import pipedrive_webhook_routes
from canonry.sandbox.webhooks import PIPEDRIVE_ATTEMPTS, WebhookSender, pipedrive_event

PAGE_MAX = 500
DEFAULT_LIMIT = 100
BURST_INTERVAL = 2.0
DEFAULT_CLIENT_ID = "canonry-pipedrive-client"
DEFAULT_CLIENT_SECRET = "sandbox-pipedrive-client-secret"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"
DEFAULT_WEBHOOK_USER = "canonry"
DEFAULT_WEBHOOK_PASSWORD = "sandbox-pipedrive-webhook-password"
USER_OFFSET = 13_000_000
# Integer ids per object (Pipedrive numbers each entity type on its own; offsets keep them apart here,
# so a foreign key joined to the wrong table can never resolve by accident in tests).
OFFSETS = {"persons": 100_000, "organizations": 200_000, "deals": 300_000, "activities": 400_000,
           "notes": 500_000, "users": USER_OFFSET, "pipelines": 0, "stages": 0}
V2_OBJECTS = ("persons", "organizations", "deals", "activities", "stages", "pipelines")
V1_LISTS = ("persons", "organizations", "deals", "activities")
WRITABLE = {"persons": "person", "organizations": "organization", "deals": "deal"}
RECENT_ITEMS = {"person": "persons", "organization": "organizations", "deal": "deals", "activity": "activities",
                "note": "notes", "user": "users", "stage": "stages", "pipeline": "pipelines"}
PIPELINES = [(1, "Sales pipeline"), (2, "Partnerships")]
STAGES = [  # (id, pipeline_id, name, order_nr, deal_probability)
    (1, 1, "Qualified", 1, 10), (2, 1, "Contact Made", 2, 20), (3, 1, "Demo Scheduled", 3, 40),
    (4, 1, "Proposal Made", 4, 60), (5, 1, "Negotiations Started", 5, 80),
    (6, 2, "Intro", 1, 20), (7, 2, "Evaluation", 2, 50), (8, 2, "Contract", 3, 90),
]
ACTIVITY_TYPES = ("call", "meeting", "task", "deadline", "email", "lunch")
COUNTRY_NAMES = {"DE": "Germany", "FR": "France", "US": "United States", "GB": "United Kingdom",
                 "CA": "Canada", "PT": "Portugal", "AU": "Australia"}
LEAD_SOURCES = ("Manually created", "Web forms", "API", "Prospector", "Chatbot")


def rfc3339(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


def v1_time(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else None


def lead_time(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_rfc3339(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "T"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _second(ts: datetime) -> datetime:
    return ts.replace(microsecond=0)


class BadRequest(Exception):
    pass


class PipedriveSimulator:
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
                id_of, parse = self._int_id(OFFSETS[name]), self._parse_int_id(OFFSETS[name])
            self.collections[name] = Collection(name, size, factories[name], id_of, parse)
        self.burst = RateWindow(burst_limit, BURST_INTERVAL)
        self.daily_budget = daily_budget
        self.oauth = OAuthServer(state, access_ttl=3599, token_prefix="pd")
        self.oauth.register(OAuthClient(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, (DEFAULT_REDIRECT_URI,)))
        self.writes: list[dict] = []
        # object -> {remote id | "name:<name>" | "*": (status, error)}
        self.write_failures: dict[str, dict[str, tuple[int, str]]] = {
            k: dict(v) for k, v in (write_failures or {}).items()}

    # -- ids ----------------------------------------------------------------------------------
    @staticmethod
    def _int_id(offset: int) -> Callable[[int], str]:
        return lambda index: str(offset + index + 1)

    @staticmethod
    def _parse_int_id(offset: int) -> Callable[[str], int | None]:
        def parse(remote_id: str) -> int | None:
            return int(remote_id) - offset - 1 if remote_id.isdigit() else None
        return parse

    def _lead_id(self, index: int) -> str:
        h = hashlib.blake2b(f"{self.state.seed}:lead:{index}".encode(), digest_size=10).hexdigest()
        return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-a{h[15:18]}-{index:012x}"

    def _parse_lead_id(self, remote_id: str) -> int | None:
        try:
            return int(remote_id.rsplit("-", 1)[-1], 16)
        except ValueError:
            return None

    def user_id(self, index: int, fake: Faker, field: str = "owner") -> int:
        return USER_OFFSET + fake.number(index, field, self.sizes["users"]) + 1

    def _ref(self, name: str, index: int, fake: Faker, field: str, percent: int = 100) -> int | None:
        if percent < 100 and not fake.chance(index, field + "?", percent):
            return None
        return OFFSETS[name] + fake.number(index, field, self.sizes[name]) + 1

    # -- data ---------------------------------------------------------------------------------
    def _custom_values(self, name: str, index: int) -> dict:
        if not self.custom_values:
            return {}
        return self.field_definitions.values(VALUE_COLLECTIONS[name], index)

    def _organization(self, index: int) -> dict:
        fake = self.faker["organizations"]
        name = fake.company(index)
        city, state, iso, postal = fake.city(index)
        number, route = fake.street(index).split(" ", 1)
        country = COUNTRY_NAMES.get(iso, iso)
        formatted = f"{number} {route}, {postal} {city}, {country}"
        return {
            "name": name, "owner_id": self.user_id(index, fake), "visible_to": 3, "label_ids": [],
            "address": {"value": formatted, "street_number": number, "route": route, "sublocality": None,
                        "locality": city, "admin_area_level_1": state, "admin_area_level_2": None,
                        "country": country, "postal_code": postal, "formatted_address": formatted},
            # Default organization fields [unverified names]; custom fields live in `custom_fields`.
            "website": "https://" + name.lower().replace(" ", "-") + ".example.com",
            "industry": fake.pick(index, "industry", INDUSTRIES).replace("_", " ").title(),
            "employee_count": fake.number(index, "employees", 5000) + 1,
            "custom_fields": self._custom_values("organizations", index),
        }

    def _person(self, index: int) -> dict:
        fake = self.faker["persons"]
        first, last = fake.person(index)
        return {
            "name": f"{first} {last}", "first_name": first, "last_name": last,
            "owner_id": self.user_id(index, fake),
            "org_id": self._ref("organizations", index, fake, "org", 90),
            "emails": [{"value": fake.email(index, first, last), "primary": True, "label": "work"}],
            "phones": [{"value": fake.phone(index), "primary": True, "label": "work"}],
            "visible_to": 3, "label_ids": [], "picture_id": None,
            "job_title": fake.pick(index, "title", JOB_TITLES),
            "custom_fields": self._custom_values("persons", index),
        }

    def _deal(self, index: int) -> dict:
        fake = self.faker["deals"]
        stage_id, pipeline_id, _, _, probability = fake.pick(index, "stage", tuple(STAGES))
        roll = fake.number(index, "status", 10)
        status = "won" if roll < 2 else "lost" if roll < 4 else "open"
        closed = None if status == "open" else \
            f"2025-{fake.number(index, 'cmonth', 12) + 1:02d}-{fake.number(index, 'cday', 28) + 1:02d}T15:30:00Z"
        return {
            "title": f"{fake.words(index, 'name', 2).title()} deal {index}",
            "owner_id": self.user_id(index, fake),
            "person_id": self._ref("persons", index, fake, "person", 85),
            "org_id": self._ref("organizations", index, fake, "org", 90),
            "pipeline_id": pipeline_id, "stage_id": stage_id,
            "value": round(fake.number(index, "value", 500_000) + 1000 + fake.number(index, "cents", 100) / 100, 2),
            "currency": fake.pick(index, "currency", ("USD", "EUR", "GBP")),
            "status": status, "probability": None, "lost_reason": "Price" if status == "lost" else None,
            "visible_to": 3, "close_time": closed, "won_time": closed if status == "won" else None,
            "lost_time": closed if status == "lost" else None,
            "expected_close_date": f"2025-{fake.number(index, 'month', 12) + 1:02d}-{fake.number(index, 'day', 28) + 1:02d}",
            "label_ids": [], "origin": "ManuallyCreated", "origin_id": None, "channel": None, "channel_id": None,
            "is_archived": False, "stage_probability": probability,
            "custom_fields": self._custom_values("deals", index),
        }

    def _activity(self, index: int) -> dict:
        fake = self.faker["activities"]
        kind = fake.pick(index, "type", ACTIVITY_TYPES)
        person = self._ref("persons", index, fake, "person", 80)
        done = fake.chance(index, "done", 50)
        due = f"2025-{fake.number(index, 'month', 12) + 1:02d}-{fake.number(index, 'day', 28) + 1:02d}"
        return {
            "subject": f"{kind.title()}: {fake.words(index, 'subject', 2)}", "type": kind,
            "owner_id": self.user_id(index, fake), "creator_user_id": self.user_id(index, fake, "creator"),
            "deal_id": self._ref("deals", index, fake, "deal", 50), "lead_id": None, "person_id": person,
            "org_id": self._ref("organizations", index, fake, "org", 70), "project_id": None,
            "due_date": due, "due_time": f"{9 + fake.number(index, 'hour', 8):02d}:{fake.pick(index, 'min', ('00', '30'))}",
            "duration": fake.pick(index, "duration", ("00:15", "00:30", "01:00")), "busy": kind == "meeting",
            "done": done, "marked_as_done_time": f"{due}T18:00:00Z" if done else None, "location": None,
            "participants": [{"person_id": person, "primary": True}] if person else [], "attendees": [],
            "public_description": None, "priority": None,
            "note": f"<p>{fake.words(index, 'note', 5)}</p>",
        }

    def _note(self, index: int) -> dict:
        fake = self.faker["notes"]
        target = fake.number(index, "target", 4)
        return {
            "content": f"<p>{fake.words(index, 'content', 6)}</p>", "user_id": self.user_id(index, fake, "user"),
            "deal_id": self._ref("deals", index, fake, "deal") if target == 0 else None,
            "person_id": self._ref("persons", index, fake, "person") if target in (1, 3) else None,
            "org_id": self._ref("organizations", index, fake, "org") if target in (2, 3) else None,
            "lead_id": None, "pinned_to_deal_flag": False, "pinned_to_person_flag": False,
            "pinned_to_organization_flag": False, "pinned_to_lead_flag": False,
        }

    def _lead(self, index: int) -> dict:
        fake = self.faker["leads"]
        with_value = fake.chance(index, "has_value", 60)
        return {
            "title": f"{fake.words(index, 'title', 2).title()} lead {index}",
            "owner_id": self.user_id(index, fake), "creator_id": self.user_id(index, fake, "creator"),
            "label_ids": [], "person_id": self._ref("persons", index, fake, "person", 90),
            "organization_id": self._ref("organizations", index, fake, "org", 70),
            "source_name": fake.pick(index, "source", LEAD_SOURCES), "origin": "ManuallyCreated",
            "origin_id": None, "channel": None, "channel_id": None,
            "is_archived": fake.chance(index, "archived", 15), "was_seen": True,
            "value": {"amount": fake.number(index, "amount", 50_000) + 500, "currency": "EUR"} if with_value else None,
            "expected_close_date": None, "next_activity_id": None, "visible_to": "3",
            "cc_email": f"sandbox+lead{index}@pipedrivemail.com",
        }

    def _user(self, index: int) -> dict:
        fake = self.faker["users"]
        first, last = fake.person(index)
        return {
            "name": f"{first} {last}", "email": fake.email(index, first, last, "sales.example.com"),
            "active_flag": index == 0 or not fake.chance(index, "inactive", 10), "is_admin": int(index == 0),
            "role_id": 1, "timezone_name": "Europe/Berlin", "timezone_offset": "+01:00", "default_currency": "EUR",
            "lang": 1, "locale": "en_US", "icon_url": None, "is_you": index == 0, "has_created_company": index == 0,
            "phone": None, "access": [{"app": "sales", "admin": index == 0, "permission_set_id": "sandbox"}],
        }

    def _pipeline(self, index: int) -> dict:
        pid, name = PIPELINES[index] if index < len(PIPELINES) else (100 + index + 1, f"Pipeline {index}")
        return {"name": name, "order_nr": index + 1, "is_deal_probability_enabled": True,
                "is_selected": index == 0}

    def _stage(self, index: int) -> dict:
        if index < len(STAGES):
            _, pipeline_id, name, order, probability = STAGES[index]
        else:
            pipeline_id, name, order, probability = 1, f"Stage {index}", index + 1, 50
        return {"order_nr": order, "name": name, "deal_probability": probability, "pipeline_id": pipeline_id,
                "is_deal_rot_enabled": False, "days_to_rotten": None}

    # -- rendering ----------------------------------------------------------------------------
    def render(self, name: str, index: int, entry: Entry) -> dict:
        """The record as the list endpoint of its API version returns it."""
        collection = self.collections[name]
        deleted = entry.deleted_at is not None
        rec = entry.record
        if name == "notes":
            return self._render_note(index, entry)
        if name == "leads":
            return {"id": collection.id_of(index), **rec, "add_time": lead_time(entry.created_at),
                    "update_time": lead_time(entry.modified_at)}
        if name == "users":
            return {"id": int(collection.id_of(index)), **rec, "created": v1_time(entry.created_at),
                    "modified": v1_time(entry.modified_at), "last_login": v1_time(entry.modified_at)}
        body = {"id": int(collection.id_of(index)), **rec, "add_time": rfc3339(entry.created_at),
                "update_time": rfc3339(entry.modified_at), "is_deleted": deleted}
        if name == "deals":
            body.pop("stage_probability", None)
            body["stage_change_time"] = rfc3339(entry.modified_at)
            if deleted:
                body["status"] = "deleted"
        return body

    def _render_note(self, index: int, entry: Entry) -> dict:
        rec = entry.record
        body = {"id": int(self.collections["notes"].id_of(index)), **rec, "add_time": v1_time(entry.created_at),
                "update_time": v1_time(entry.modified_at), "active_flag": entry.deleted_at is None,
                "last_update_user_id": rec["user_id"]}
        users = self.collections["users"]
        user_index = users.index_of(str(rec["user_id"]))
        if user_index is not None:
            user = users.get(user_index).record
            body["user"] = {"email": user["email"], "name": user["name"], "icon_url": None, "is_you": False}
        return body

    def render_v1(self, name: str, index: int, entry: Entry) -> dict:
        """A v1 body (v1 lists and /recents): `YYYY-MM-DD HH:MM:SS` times, `active_flag`."""
        if name in ("notes", "users"):
            return self.render(name, index, entry)
        body = self.render(name, index, entry)
        for key in ("add_time", "update_time", "close_time", "won_time", "lost_time", "marked_as_done_time",
                    "stage_change_time"):
            if isinstance(body.get(key), str) and "T" in body[key]:
                body[key] = v1_time(parse_rfc3339(body[key]))
        body["active_flag"] = entry.deleted_at is None
        if name in VALUE_COLLECTIONS:   # v1 has no `custom_fields` object: values sit at the top level by key
            body.update(self.field_definitions.render_v1(VALUE_COLLECTIONS[name], body.pop("custom_fields", None) or {}))
        if name == "persons":
            body["email"] = body.pop("emails", [])
            body["phone"] = body.pop("phones", [])
        if name in ("deals", "activities"):
            body["user_id"] = body.get("owner_id")
        body.pop("is_deleted", None)
        if name == "deals":
            body["deleted"] = entry.deleted_at is not None
            body["active"] = entry.deleted_at is None and body.get("status") == "open"
        return body

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

    def _guard(self, request: Request) -> tuple[Response | None, dict[str, str]]:
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
    def _encode_cursor(key: list) -> str:
        return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")

    @staticmethod
    def _decode_cursor(cursor: str) -> list:
        try:
            return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        except (ValueError, json.JSONDecodeError):
            raise BadRequest("Validation failed: cursor: invalid cursor") from None

    async def v2_list(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        name = request.path_params["object"]
        if name not in V2_OBJECTS:
            return self.error_response(404, f"Unknown endpoint /api/v2/{name}", "not_found", headers)
        q = request.query_params
        try:
            limit = self._limit(request)
            statuses = self._deal_statuses(request, {"open", "won", "lost"}) if name == "deals" else None
            since = parse_rfc3339(q["updated_since"]) if q.get("updated_since") else None
            until = parse_rfc3339(q["updated_until"]) if q.get("updated_until") else None
            sort_by = q.get("sort_by", "id")
            direction = q.get("sort_direction", "asc")
            if sort_by not in ("id", "update_time", "add_time") or direction not in ("asc", "desc"):
                raise BadRequest("Validation failed: sort_by/sort_direction")
            after = self._decode_cursor(q["cursor"]) if q.get("cursor") else None
            ids = {i.strip() for i in q.get("ids", "").split(",") if i.strip()} or None
            if ids and len(ids) > 100:
                raise BadRequest("Validation failed: ids: at most 100 ids")
            owner = q.get("owner_id")
        except (BadRequest, ValueError) as exc:
            return self.error_response(400, str(exc), "validation", headers)
        collection = self.collections[name]

        def keep(index: int, entry: Entry) -> bool:
            if not self._matches(name, entry, statuses):
                return False
            if since is not None and _second(entry.modified_at) < since:
                return False
            if until is not None and _second(entry.modified_at) >= until:
                return False
            if ids is not None and collection.id_of(index) not in ids:
                return False
            return owner is None or str(entry.record.get("owner_id")) == owner

        try:
            candidates = list(self._ordered(collection, sort_by, direction, since, after)) \
                if direction == "desc" else self._ordered(collection, sort_by, direction, since, after)
        except (TypeError, ValueError, IndexError):
            return self.error_response(400, "Validation failed: cursor does not belong to this query", "validation",
                                       headers)
        page, next_key, page_key = [], None, None
        for key, index, entry in candidates:
            if not keep(index, entry):
                continue
            if len(page) == limit:
                next_key = page_key
                break
            page.append(self.render(name, index, entry))
            page_key = key
        additional = {"next_cursor": self._encode_cursor(next_key) if next_key is not None else None}
        return self._ok(page, additional, headers)

    def _ordered(self, collection: Collection, sort_by: str, direction: str, since: datetime | None,
                 after: list | None) -> Iterator[tuple[list, int, Entry]]:
        """(sort key, index, entry) in the requested order, strictly after the cursor key `after`;
        keys are JSON-able (they become the opaque cursor)."""
        if sort_by == "update_time" and direction == "asc":
            lower = since or (BASE_EPOCH - timedelta(days=3650))
            if after is not None:
                lower = max(lower, datetime.fromisoformat(after[0]))
            for index, entry in collection.iter_modified_since(lower, include_deleted=True):
                key = [entry.modified_at.isoformat(), index]
                if after is None or key > after:
                    yield key, index, entry
            return
        if sort_by in ("id", "add_time") and direction == "asc":
            # Ids grow with the index and creation times never go backwards: both are index order.
            for index in range(after[0] + 1 if after else 0, collection.size):
                yield [index], index, collection.get(index)
            return
        # Descending orders: materialise (rarely used; fine for a sandbox).
        rows = []
        for index in range(collection.size):
            entry = collection.get(index)
            if sort_by == "update_time":
                key = [entry.modified_at.isoformat(), index]
            elif sort_by == "add_time":
                key = [entry.created_at.isoformat(), index]
            else:
                key = [index]
            if after is None or key < after:
                rows.append((key, index, entry))
        rows.sort(key=lambda r: r[0], reverse=True)
        yield from rows

    async def v2_get(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        name = request.path_params["object"]
        if name not in V2_OBJECTS:
            return self.error_response(404, f"Unknown endpoint /api/v2/{name}", "not_found", headers)
        collection = self.collections[name]
        index = collection.index_of(request.path_params["record_id"])
        if index is None or (not collection.is_alive(index) and name != "deals"):
            return self.error_response(404, f"{WRITABLE.get(name, name).title()} not found", "not_found", headers)
        return self._ok(self.render(name, index, collection.get(index)), headers=headers)

    # v1 lists ---------------------------------------------------------------------------------
    def _v1_page(self, request: Request, rows: Iterator[dict], headers: dict[str, str]) -> Response:
        try:
            limit = self._limit(request)
            start = int(request.query_params.get("start", "0") or 0)
        except (BadRequest, ValueError) as exc:
            return self.error_response(400, str(exc), "validation", headers)
        page, more, position = [], False, 0
        for row in rows:
            if position >= start + limit:
                more = True
                break
            if position >= start:
                page.append(row)
            position += 1
        pagination = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pagination["next_start"] = start + limit
        return self._ok(page or None, {"pagination": pagination}, headers)

    def _sorted_rows(self, name: str, sort: str | None, keep: Callable[[Entry], bool],
                     render: Callable[[int, Entry], dict]) -> Iterator[dict]:
        collection = self.collections[name]
        field, _, mode = (sort or "id ASC").partition(" ")
        descending = mode.strip().upper() == "DESC"
        if field == "update_time" and not descending:
            for index, entry in collection.iter_modified_since(BASE_EPOCH - timedelta(days=3650), True):
                if keep(entry):
                    yield render(index, entry)
            return
        if field == "update_time":
            # Newest first: changed records (in the overlay) then base records backwards.
            with collection.lock:
                changed = [i for _, i in reversed(collection._changed_order)]
            for index in changed:
                entry = collection.changes[index]
                if keep(entry):
                    yield render(index, entry)
            for index in range(collection.base_size - 1, -1, -1):
                if index in collection.changes:
                    continue
                entry = collection.get(index)
                if keep(entry):
                    yield render(index, entry)
            return
        indexes = range(collection.size - 1, -1, -1) if descending else range(collection.size)
        for index in indexes:
            entry = collection.get(index)
            if keep(entry):
                yield render(index, entry)

    async def v1_list(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        name = request.path_params["object"]
        if name not in V1_LISTS:
            return self.error_response(404, f"Unknown endpoint /v1/{name}", "not_found", headers)
        try:
            statuses = self._deal_statuses(request, {"open", "won", "lost"}) if name == "deals" else None
        except BadRequest as exc:
            return self.error_response(400, str(exc), "validation", headers)
        rows = self._sorted_rows(name, request.query_params.get("sort"),
                                 lambda e: self._matches(name, e, statuses),
                                 lambda i, e: self.render_v1(name, i, e))
        return self._v1_page(request, rows, headers)

    async def v1_notes(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        rows = self._sorted_rows("notes", request.query_params.get("sort"), lambda e: e.deleted_at is None,
                                 lambda i, e: self.render("notes", i, e))
        return self._v1_page(request, rows, headers)

    async def v1_leads(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        archived = request.query_params.get("archived_status", "all")
        if archived not in ("archived", "not_archived", "all"):
            return self.error_response(400, "archived_status must be archived, not_archived or all", "validation",
                                       headers)

        def keep(entry: Entry) -> bool:
            if entry.deleted_at is not None:
                return False
            return archived == "all" or entry.record["is_archived"] == (archived == "archived")

        rows = self._sorted_rows("leads", request.query_params.get("sort"), keep,
                                 lambda i, e: self.render("leads", i, e))
        return self._v1_page(request, rows, headers)

    async def v1_users(self, request: Request) -> Response:
        """Every user in one answer: Pipedrive's /v1/users has no pagination."""
        error, headers = self._guard(request)
        if error:
            return error
        collection = self.collections["users"]
        data = [self.render("users", i, e) for i, e in collection.iter_alive()]
        return self._ok(data, None, headers)

    async def recents(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        q = request.query_params
        raw = q.get("since_timestamp")
        try:
            since = datetime.strptime(raw or "", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            return self.error_response(400, "since_timestamp is required in format YYYY-MM-DD HH:MM:SS",
                                       "validation", headers)
        items = [i.strip() for i in q.get("items", "").split(",") if i.strip()] or list(RECENT_ITEMS)
        unknown = [i for i in items if i not in RECENT_ITEMS]
        if unknown:
            return self.error_response(400, f"Unknown items: {', '.join(unknown)}", "validation", headers)
        changes: list[tuple[datetime, str, int, Entry]] = []
        for item in items:
            collection = self.collections[RECENT_ITEMS[item]]
            for index, entry in collection.iter_modified_since(since, include_deleted=True):
                changes.append((entry.modified_at, item, index, entry))
        changes.sort(key=lambda c: (c[0], c[1], c[2]))
        rows = ({"item": item, "id": int(self.collections[RECENT_ITEMS[item]].id_of(index)),
                 "data": self._recent_data(item, index, entry)}
                for _, item, index, entry in changes)
        response = self._v1_page(request, rows, headers)
        body = json.loads(response.body)
        if body.get("success"):
            page = body.get("data") or []
            last = (page[-1]["data"][0] if isinstance(page[-1]["data"], list) else page[-1]["data"]) if page else {}
            body["additional_data"].update(since_timestamp=raw, last_timestamp_on_page=(
                last.get("update_time") or last.get("modified")) if page else raw)
            return json_response(body, headers=headers)
        return response

    def _recent_data(self, item: str, index: int, entry: Entry) -> dict | list[dict]:
        body = self.render_v1(RECENT_ITEMS[item], index, entry)
        # Pipedrive's quirk: a user's `data` in /recents is a one-element list, every other item's an object
        # (singer-io/tap-pipedrive RecentUsersStream.process_row reads `row['data'][0]`).
        return [body] if item == "user" else body

    # -- field definitions ----------------------------------------------------------------------
    async def v1_fields(self, request: Request) -> Response:
        """`GET /v1/<entity>Fields`: every field of the entity, system then custom, offset-paged."""
        error, headers = self._guard(request)
        if error:
            return error
        entity = FIELD_ENDPOINTS[request.url.path.rsplit("/", 1)[-1]]
        return self._v1_page(request, iter(self.field_definitions.fields[entity]), headers)

    async def v1_field_update(self, request: Request) -> Response:
        """`PUT /v1/<entity>Fields/{id}` with `{name}`: renames a custom field (its key stays)."""
        error, headers = self._guard(request)
        if error:
            return error
        segment, raw_id = request.url.path.split("/")[-2:]
        entity = FIELD_ENDPOINTS[segment]
        try:
            body = await self._body(request)
        except (BadRequest, ValueError) as exc:
            return self.error_response(400, f"Invalid request body: {exc}", "validation", headers)
        if not raw_id.isdigit() or not isinstance(body.get("name"), str) or not body["name"].strip():
            return self.error_response(400, "Field id must be an integer and name a non-empty string", "validation",
                                       headers)
        definition = next((f for f in self.field_definitions.fields[entity] if f["id"] == int(raw_id)), None)
        if definition is None:
            return self.error_response(404, "Field not found", "not_found", headers)
        if not definition["edit_flag"]:
            return self.error_response(400, "System fields cannot be renamed", "validation", headers)
        self.field_definitions.rename(entity, int(raw_id), body["name"].strip(), utcnow())
        return self._ok(definition, headers=headers)

    # -- writes (reverse ETL) -------------------------------------------------------------------
    def _writable(self, request: Request) -> tuple[str | None, str]:
        name = request.path_params["object"]
        version = "v2" if request.url.path.startswith("/api/v2/") else "v1"
        return (name if name in WRITABLE else None), version

    def _injected_failure(self, name: str, remote_id: str | None, body: dict) -> tuple[int, str] | None:
        rules = self.write_failures.get(name, {})
        label = body.get("title") if name == "deals" else body.get("name")
        for key in (remote_id, f"name:{label}" if label else None, "*"):
            if key is not None and key in rules:
                return rules[key]
        return None

    def _log_write(self, method: str, name: str, remote_id: str | None, body: dict, status: int,
                   error: str | None = None) -> None:
        with self.state.lock:
            self.writes.append({"method": method, "object": name, "id": remote_id, "body": body,
                                "status": status, "error": error, "at": time.time()})

    async def _body(self, request: Request) -> dict:
        raw = await request.body()
        if not raw:
            return {}
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return dict(await request.form())
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise BadRequest("request body must be a JSON object")
        return data

    def _apply(self, name: str, record: dict, body: dict, version: str) -> dict:
        """Merge a write body into a stored record (only fields Pipedrive accepts for the object)."""
        simple = {
            "persons": ("name", "first_name", "last_name", "owner_id", "org_id", "visible_to", "label_ids",
                        "job_title"),
            "organizations": ("name", "owner_id", "visible_to", "label_ids", "website", "industry",
                              "employee_count"),
            "deals": ("title", "owner_id", "person_id", "org_id", "pipeline_id", "stage_id", "value", "currency",
                      "status", "probability", "lost_reason", "visible_to", "expected_close_date", "label_ids"),
        }[name]
        for key in simple:
            if key in body:
                record[key] = body[key]
        if isinstance(body.get("custom_fields"), dict):   # v2: custom fields by their (hash) key
            record["custom_fields"] = {**(record.get("custom_fields") or {}), **body["custom_fields"]}
        if version == "v1" and name == "deals" and "user_id" in body:
            record["owner_id"] = body["user_id"]
        if name == "persons":
            for v2_key, v1_key in (("emails", "email"), ("phones", "phone")):
                value = body.get(v2_key, body.get(v1_key))
                if value is None:
                    continue
                if isinstance(value, str):
                    value = [{"value": value, "primary": True, "label": "work"}]
                record[v2_key] = [{"value": v.get("value"), "primary": bool(v.get("primary", n == 0)),
                                   "label": v.get("label", "work")} for n, v in enumerate(value)]
            if ("first_name" in body or "last_name" in body) and "name" not in body:
                record["name"] = f"{record.get('first_name') or ''} {record.get('last_name') or ''}".strip()
            elif "name" in body and "first_name" not in body:
                first, _, last = str(body["name"]).partition(" ")
                record["first_name"], record["last_name"] = first, last or None
        if name == "organizations" and "address" in body:
            address = body["address"]
            if isinstance(address, str):
                address = {"value": address, "formatted_address": address}
            record["address"] = {**(record.get("address") or {}), **address}
        if name == "deals" and "value" in body and body["value"] is not None:
            record["value"] = float(body["value"])
        if name == "deals" and body.get("status") in ("won", "lost"):
            now = rfc3339(utcnow())
            record["close_time"] = now
            record["won_time" if body["status"] == "won" else "lost_time"] = now
        return record

    def _blank(self, name: str) -> dict:
        base = {"persons": {"name": None, "first_name": None, "last_name": None, "owner_id": USER_OFFSET + 1,
                            "org_id": None, "emails": [], "phones": [], "visible_to": 3, "label_ids": [],
                            "picture_id": None, "job_title": None, "custom_fields": {}},
                "organizations": {"name": None, "owner_id": USER_OFFSET + 1, "visible_to": 3, "label_ids": [],
                                  "address": None, "website": None, "industry": None, "employee_count": None,
                                  "custom_fields": {}},
                "deals": {"title": None, "owner_id": USER_OFFSET + 1, "person_id": None, "org_id": None,
                          "pipeline_id": 1, "stage_id": 1, "value": 0.0, "currency": "EUR", "status": "open",
                          "probability": None, "lost_reason": None, "visible_to": 3, "close_time": None,
                          "won_time": None, "lost_time": None, "expected_close_date": None, "label_ids": [],
                          "origin": "API", "origin_id": None, "channel": None, "channel_id": None,
                          "is_archived": False, "stage_probability": 10, "custom_fields": {}}}
        return json.loads(json.dumps(base[name]))

    async def create(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        name, version = self._writable(request)
        if name is None:
            return self.error_response(404, f"Unknown endpoint {request.url.path}", "not_found", headers)
        try:
            body = await self._body(request)
        except (BadRequest, ValueError) as exc:
            return self.error_response(400, f"Invalid request body: {exc}", "validation", headers)
        required = "title" if name == "deals" else "name"
        failure = self._injected_failure(name, None, body)
        if failure is None and not body.get(required):
            failure = (400, f"{required.title()} must be given.")
        if failure is not None:
            self._log_write("POST", name, None, body, failure[0], failure[1])
            return self.error_response(failure[0], failure[1], "validation", headers)
        collection = self.collections[name]
        record = self._apply(name, self._blank(name), body, version)
        index = collection.create(lambda _i: record, utcnow())
        remote_id = collection.id_of(index)
        self._log_write("POST", name, remote_id, body, 201)
        rendered = self.render(name, index, collection.get(index)) if version == "v2" \
            else self.render_v1(name, index, collection.get(index))
        return json_response({"success": True, "data": rendered}, 201, headers)

    async def update(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        name, version = self._writable(request)
        if name is None:
            return self.error_response(404, f"Unknown endpoint {request.url.path}", "not_found", headers)
        remote_id = request.path_params["record_id"]
        try:
            body = await self._body(request)
        except (BadRequest, ValueError) as exc:
            return self.error_response(400, f"Invalid request body: {exc}", "validation", headers)
        method = "PATCH" if version == "v2" else "PUT"
        collection = self.collections[name]
        index = collection.index_of(remote_id)
        failure = self._injected_failure(name, remote_id, body)
        if failure is None and (index is None or not collection.is_alive(index)):
            failure = (404, f"{WRITABLE[name].title()} not found")
        if failure is not None:
            self._log_write(method, name, remote_id, body, failure[0], failure[1])
            return self.error_response(failure[0], failure[1], "validation", headers)
        entry = collection.update(index, lambda rec: self._apply(name, rec, body, version), utcnow())
        self._log_write(method, name, remote_id, body, 200)
        rendered = self.render(name, index, entry) if version == "v2" else self.render_v1(name, index, entry)
        return self._ok(rendered, headers=headers)

    async def delete(self, request: Request) -> Response:
        error, headers = self._guard(request)
        if error:
            return error
        name, version = self._writable(request)
        if name is None:
            return self.error_response(404, f"Unknown endpoint {request.url.path}", "not_found", headers)
        remote_id = request.path_params["record_id"]
        collection = self.collections[name]
        index = collection.index_of(remote_id)
        failure = self._injected_failure(name, remote_id, {})
        if failure is None and (index is None or not collection.is_alive(index)):
            failure = (404, f"{WRITABLE[name].title()} not found")
        if failure is not None:
            self._log_write("DELETE", name, remote_id, {}, failure[0], failure[1])
            return self.error_response(failure[0], failure[1], "validation", headers)
        collection.delete(index, utcnow())
        self._log_write("DELETE", name, remote_id, {}, 200)
        return self._ok({"id": int(remote_id)}, headers=headers)

    async def control_writes(self, request: Request) -> Response:
        if request.method == "DELETE":
            with self.state.lock:
                self.writes.clear()
            return json_response({"cleared": True})
        with self.state.lock:
            return json_response({"writes": list(self.writes)})

    async def control_write_failures(self, request: Request) -> Response:
        """POST {object, ids?: [...], names?: [...], all?: bool, status?: 400, error?: "..."}; DELETE clears."""
        if request.method == "DELETE":
            self.write_failures.clear()
            return json_response({"cleared": True})
        body = await request.json()
        name = body.get("object")
        if name not in WRITABLE:
            return json_response({"error": f"object must be one of {sorted(WRITABLE)}"}, 400)
        failure = (int(body.get("status", 400)), str(body.get("error", "Injected failure")))
        rules = self.write_failures.setdefault(name, {})
        for remote_id in body.get("ids", []):
            rules[str(remote_id)] = failure
        for label in body.get("names", []):
            rules[f"name:{label}"] = failure
        if body.get("all"):
            rules["*"] = failure
        return json_response({"object": name, "rules": len(rules)})

    # -- OAuth --------------------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        try:
            code = self.oauth.authorize(q.get("client_id", ""), q.get("redirect_uri", ""), q.get("scope", ""),
                                        q.get("code_challenge"), q.get("code_challenge_method"))
        except OAuthError as exc:
            return json_response({"success": False, "error": exc.description, "errorCode": 400}, 400)
        params = {"code": code}
        if q.get("state") is not None:
            params["state"] = q["state"]
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode(params)}", status_code=302)

    async def token(self, request: Request) -> Response:
        form = dict(await request.form())
        basic = None
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            basic = (client_id, secret)
        try:
            grant = form.get("grant_type")
            if grant == "authorization_code":
                issued = self.oauth.exchange_code(form, basic)
            elif grant == "refresh_token":
                issued = self.oauth.refresh(form, basic)
            else:
                raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")
        except OAuthError as exc:
            return json_response({"success": False, "error": exc.error, "message": exc.description}, exc.status)
        return json_response({"access_token": issued.access_token, "token_type": "Bearer",
                              "refresh_token": issued.refresh_token, "scope": " ".join(issued.scopes),
                              "expires_in": issued.expires_in, "api_domain": self.state.base_url})

    # -- control ------------------------------------------------------------------------------
    def mutate(self, object_name: str, action: str, count: int, rng: random.Random,
               ids: list[str] | None) -> list[str]:
        collection = self.collections[object_name]
        if action == "create":
            out = []
            for _ in range(count):
                index = collection.create(self._fresh(object_name), utcnow())
                out.append(collection.id_of(index))
                self._notify(object_name, "create", index, None)
            return out
        indexes = collection.targets(action, count, rng, ids)
        done = []
        for index in indexes:
            now = utcnow()
            previous = self.render(object_name, index, collection.get(index)) if self.state.webhook_url else None
            if action == "update":
                collection.update(index, lambda rec, t=now: self._changed(object_name, rec, t), now)
            elif action == "delete":
                collection.delete(index, now)
            elif action == "restore":
                collection.restore(index, now)
            done.append(collection.id_of(index))
            self._notify(object_name, {"update": "change", "restore": "create"}.get(action, action), index, previous)
        return done

    WEBHOOK_ENTITIES = {"persons": "person", "organizations": "organization", "deals": "deal",
                        "activities": "activity", "notes": "note", "leads": "lead"}

    def _notify(self, object_name: str, action: str, index: int, previous: dict | None) -> None:
        url, entity = self.state.webhook_url, self.WEBHOOK_ENTITIES.get(object_name)
        if not url or entity is None:
            return
        collection = self.collections[object_name]
        data = None if action == "delete" else self.render(object_name, index, collection.get(index))
        pipedrive_event(self.webhooks, url, self.webhook_user, self.webhook_password, action=action, entity=entity,
                        entity_id=collection.id_of(index), data=data, previous=previous)

    def _fresh(self, object_name: str) -> Callable[[int], dict]:
        def make(index: int) -> dict:
            base = self.collections[object_name].factory(index % max(1, self.sizes[object_name]))
            record = json.loads(json.dumps(base))
            if object_name == "persons":
                first, last = self.faker["persons"].person(index)
                record.update(first_name=first, last_name=f"{last} {index}", name=f"{first} {last} {index}")
                record["emails"] = [{"value": self.faker["persons"].email(index, first, last), "primary": True,
                                     "label": "work"}]
            elif object_name == "organizations":
                record["name"] = self.faker["organizations"].company(index)
            elif object_name == "deals":
                record["title"] = f"New deal {index}"
            elif object_name == "leads":
                record["title"] = f"New lead {index}"
            elif object_name in ("activities", "notes"):
                key = "subject" if object_name == "activities" else "content"
                record[key] = f"{record[key]} (new {index})"
            elif object_name == "users":
                record["name"] = f"New user {index}"
            return record
        return make

    @staticmethod
    def _changed(object_name: str, record: dict, now: datetime) -> dict:
        stamp = now.strftime("%H%M%S%f")
        if object_name == "persons":
            record["last_name"] = f"Updated{stamp}"
            record["name"] = f"{record.get('first_name') or ''} {record['last_name']}".strip()
        elif object_name in ("organizations", "users", "stages", "pipelines"):
            record["name"] = f"{record['name'].split(' (updated')[0]} (updated {stamp})"
        elif object_name in ("deals", "leads"):
            record["title"] = f"{record['title'].split(' (updated')[0]} (updated {stamp})"
            if object_name == "deals":
                record["value"] = round(float(record.get("value") or 0) + 100.5, 2)
        elif object_name == "activities":
            record["subject"] = f"updated {stamp}"
            record["done"] = not record.get("done")
            record["marked_as_done_time"] = rfc3339(now) if record["done"] else None
        elif object_name == "notes":
            record["content"] = f"<p>updated {stamp}</p>"
        return record

    def truth(self, object_name: str) -> list[dict]:
        collection = self.collections[object_name]
        out = []
        for index in range(collection.size):
            entry = collection.get(index)
            body = self.render(object_name, index, entry)
            stamp = body.get("update_time") or body.get("modified")
            out.append({"id": collection.id_of(index), "deleted": entry.deleted_at is not None,
                        "updated_at": stamp, "record": body})
        return out

