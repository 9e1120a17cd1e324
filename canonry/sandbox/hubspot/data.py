"""HubSpot sandbox data: object types, pipelines, record factories (pure functions of seed and index) and
rendering (every property value a string, as HubSpot sends them)."""


from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.datagen import INDUSTRIES, JOB_TITLES, Faker
from canonry.sandbox.hubspot.properties import CUSTOM_PROPERTIES

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
def iso(ts: datetime) -> str:
    if ts.tzinfo is not UTC:
        ts = ts.astimezone(UTC)
    # Same text as strftime("%Y-%m-%dT%H:%M:%S.") + milliseconds + "Z", at a third of the cost.
    return (f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}."
            f"{ts.microsecond // 1000:03d}Z")


def parse_time(value: str) -> datetime:
    """HubSpot accepts epoch milliseconds or ISO-8601 in date filters."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class HubSpotData:
    """The records of the HubSpot simulator and their JSON."""

    faker: dict[str, Faker]
    collections: dict[str, Collection]

    # -- data ---------------------------------------------------------------------------------
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
        created, modified = iso(entry.created_at), iso(entry.modified_at)
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
            body["archivedAt"] = iso(entry.deleted_at)
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
                "userIdIncludingInactive": entry.record["userId"], "createdAt": iso(entry.created_at),
                "updatedAt": iso(entry.modified_at), "archived": entry.deleted_at is not None}
        return body

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
