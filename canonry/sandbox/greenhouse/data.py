"""Greenhouse sandbox data: constants, record factories (record i is a pure function of seed and i), rendering."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.datagen import CITIES, DEPARTMENTS, JOB_TITLES, Faker

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


class GreenhouseData:
    """The records of the Greenhouse simulator and their v3 JSON."""

    sizes: dict[str, int]
    faker: dict[str, Faker]
    collections: dict[str, Collection]

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
        custom = getattr(self, "custom", None)
        if custom is not None and name in ("candidates", "applications", "jobs"):
            body["keyed_custom_fields"] = custom.keyed(name, body.get("custom_fields") or {})
        body["created_at"] = iso(created)
        body["updated_at"] = iso(entry.modified_at)
        return body
