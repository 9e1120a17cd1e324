"""Pipedrive sandbox data: constants, time formats, id codecs, record factories (pure functions of seed and
index) and rendering (v2 and v1 shapes)."""


from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.datagen import INDUSTRIES, JOB_TITLES, Faker
from canonry.sandbox.pipedrive.fields import VALUE_COLLECTIONS

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


def whole_second(ts: datetime) -> datetime:
    return ts.replace(microsecond=0)


class BadRequest(Exception):
    pass


class PipedriveData:
    """The records of the Pipedrive simulator and their JSON."""

    collections: dict[str, Collection]

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
