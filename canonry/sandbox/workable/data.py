"""Workable sandbox data: constants, id codecs, record factories (pure functions of seed and index) and the
SPI v3 JSON each object is rendered as. The API it serves is described in `api.py`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from canonry.sandbox.collection import Entry
from canonry.sandbox.datagen import DEPARTMENTS, JOB_TITLES, Faker
from canonry.sandbox.kit import iso_millis

API_PREFIX = "/spi/v3"
PAGE_MAX = 100                 # `limit` above 100 is capped
PAGE_DEFAULT = 50
SUBDOMAIN = "acme"
ACCOUNT = {"subdomain": SUBDOMAIN, "name": "Acme"}
ACCOUNT_TOKEN_LIMIT = 10       # requests per 10-second interval for an account token
RATE_INTERVAL_SECONDS = 10.0

# Workable ids are short lowercase hex strings. Ours: a one-digit object prefix, then the index in six hex
# digits, so ids sort in creation order (what `since_id` / `max_id` compare) and decode to their index.
ID_PREFIX = {"candidates": "3", "jobs": "6", "members": "1", "events": "e", "departments": "d"}

# The account's recruitment pipeline (`GET /stages`): slug, name, kind, in position order.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("sourced", "Sourced", "sourced"), ("applied", "Applied", "applied"),
    ("phone-screen", "Phone Screen", "shortlisted"), ("assessment", "Assessment", "assessment"),
    ("interview", "Interview", "interview"), ("offer", "Offer", "offer"), ("hired", "Hired", "hired"),
)
HIRED_STAGE = "hired"
HIRED_AFTER = timedelta(days=21)
JOB_STATES = ("published", "published", "published", "draft", "closed", "archived")
MEMBER_ROLES = ("admin", "simple", "simple", "reviewer")
DOMAINS = ("LinkedIn", "Indeed", "Company careers page", "Referral", "Glassdoor", "Sourced")
DISQUALIFICATION_REASONS = ("Not a fit", "Underqualified", "Salary expectations", "Position filled", "Withdrew")
EVENT_TYPES = ("interview", "interview", "interview", "call", "meeting")
MEMBER_STATUSES = ("accepted", "pending", "declined")


def make_id(kind: str, index: int) -> str:
    return f"{ID_PREFIX[kind]}{index:06x}"


def parse_id(kind: str) -> Callable[[str], int | None]:
    prefix = ID_PREFIX[kind]

    def parse(remote_id: str) -> int | None:
        if len(remote_id) != 7 or not remote_id.startswith(prefix):
            return None
        try:
            return int(remote_id[1:], 16)
        except ValueError:
            return None
    return parse


def shortcode(index: int) -> str:
    """A job's system-generated code (what candidates and events name their job by)."""
    return f"ACME{index + 1:04X}"


class WorkableData:
    """The records of the Workable simulator and their SPI v3 JSON."""

    fake: dict[str, Faker]
    sizes: dict[str, int]

    # -- factories -------------------------------------------------------------------------------
    def _department(self, index: int) -> dict:
        # The first len(DEPARTMENTS) are top level; the rest are teams under them.
        name = DEPARTMENTS[index % len(DEPARTMENTS)]
        if index < len(DEPARTMENTS):
            return {"name": name, "_parent": None}
        return {"name": f"{name} Team {index // len(DEPARTMENTS)}", "_parent": index % len(DEPARTMENTS)}

    def _member(self, index: int) -> dict:
        fake = self.fake["members"]
        first, last = fake.person(index)
        return {"name": f"{first} {last}", "headline": fake.pick(index, "title", JOB_TITLES),
                "email": fake.email(index, first, last, "acme.example.com"),
                "role": "admin" if index == 0 else fake.pick(index, "role", MEMBER_ROLES),
                "active": index == 0 or not fake.chance(index, "inactive", 10)}

    def _job(self, index: int) -> dict:
        fake = self.fake["jobs"]
        title = fake.pick(index, "title", JOB_TITLES)
        city, region, country, zip_code = fake.city(index)
        return {"title": title, "_department": fake.number(index, "department", self.sizes["departments"]),
                "state": fake.pick(index, "state", JOB_STATES),
                "code": f"REQ-{1000 + index}" if fake.chance(index, "code", 70) else None,
                "location": {"location_str": f"{city}, {country}", "country": country, "country_code": country,
                             "region": region, "region_code": region, "city": city, "zip_code": zip_code,
                             "telecommuting": fake.chance(index, "remote", 20),
                             "workplace_type": fake.pick(index, "workplace", ("on_site", "hybrid", "remote"))}}

    def _candidate(self, index: int) -> dict:
        fake = self.fake["candidates"]
        first, last = fake.person(index)
        stage = fake.number(index, "stage", len(STAGES))
        disqualified = STAGES[stage][0] != HIRED_STAGE and fake.chance(index, "disqualified", 25)
        city = fake.city(index)
        return {"firstname": first, "lastname": last,
                "headline": f"{fake.pick(index, 'title', JOB_TITLES)} at {fake.company(index)}",
                "_job": fake.number(index, "job", self.sizes["jobs"]),
                "stage": STAGES[stage][0], "disqualified": disqualified,
                "withdrew": disqualified and fake.chance(index, "withdrew", 20),
                "disqualification_reason": fake.pick(index, "reason", DISQUALIFICATION_REASONS)
                if disqualified else None,
                "sourced": STAGES[stage][0] == "sourced",
                "email": fake.email(index, first, last),
                "domain": fake.pick(index, "domain", DOMAINS),
                "address": f"{fake.street(index)}, {city[0]}" if fake.chance(index, "address", 70) else None,
                "phone": fake.phone(index) if fake.chance(index, "phone", 80) else None}

    def _event(self, index: int) -> dict:
        fake = self.fake["events"]
        start = datetime(2025, 2, 1, 9, tzinfo=UTC) + timedelta(hours=(index * 7) % 4000)
        members = []
        for n in range(1 + fake.number(index, "panel", 3)):
            member = fake.number(index, f"member{n}", self.sizes["members"])
            if member not in (m[0] for m in members):
                members.append((member, fake.pick(index, f"status{n}", MEMBER_STATUSES)))
        return {"_candidate": fake.number(index, "candidate", self.sizes["candidates"]),
                "type": fake.pick(index, "type", EVENT_TYPES),
                "title": f"Interview {index}", "description": fake.words(index, "desc", 4),
                "starts_at": iso_millis(start),
                "ends_at": iso_millis(start + timedelta(minutes=fake.pick(index, "length", (30, 45, 60)))),
                "cancelled": fake.chance(index, "cancelled", 8), "_members": members}

    # -- rendering -------------------------------------------------------------------------------
    def render(self, kind: str, index: int, entry: Entry) -> dict:
        record = entry.record
        public = {k: v for k, v in record.items() if not k.startswith("_")}
        if kind == "departments":
            parent = record["_parent"]
            return {"id": make_id("departments", index), "name": record["name"],
                    "parent_id": None if parent is None else make_id("departments", parent)}
        if kind == "members":
            return {"id": make_id("members", index), **public}
        if kind == "jobs":
            return self._render_job(index, entry)
        if kind == "candidates":
            return self._render_candidate(index, entry)
        if kind == "events":
            return self._render_event(index, entry)
        if kind == "stages":
            return {"slug": record["slug"], "name": record["name"], "kind": record["kind"], "position": index}
        raise KeyError(kind)

    def _department_chain(self, index: int) -> list[dict]:
        chain = []
        departments = self.collections["departments"]
        while index is not None:
            record = departments.get(index).record
            chain.insert(0, {"id": make_id("departments", index), "name": record["name"]})
            index = record["_parent"]
        return chain

    def _render_job(self, index: int, entry: Entry) -> dict:
        record = entry.record
        code = shortcode(index)
        hierarchy = self._department_chain(record["_department"])
        return {"id": make_id("jobs", index), "title": record["title"],
                "full_title": f"{record['title']} - {hierarchy[-1]['name']}" + (f" - {record['code']}"
                                                                                  if record["code"] else ""),
                "shortcode": code, "code": record["code"], "state": record["state"],
                "department": hierarchy[-1]["name"], "department_hierarchy": hierarchy,
                "url": f"https://apply.workable.com/j/{code}", "application_url":
                f"https://apply.workable.com/j/{code}/apply", "shortlink": f"https://apply.workable.com/j/{code}",
                "location": record["location"], "created_at": iso_millis(entry.created_at),
                "updated_at": iso_millis(entry.modified_at)}

    def _render_candidate(self, index: int, entry: Entry) -> dict:
        record = entry.record
        candidate_id = make_id("candidates", index)
        job = record["_job"]
        stage = next(s for s in STAGES if s[0] == record["stage"])
        # The day the candidate reached the hired stage: set by the move (control.py); a base record hired
        # from the start was hired HIRED_AFTER its creation (stable across later edits).
        hired_at = None
        if record["stage"] == HIRED_STAGE:
            hired_at = record.get("_hired_at") or (entry.created_at + HIRED_AFTER).date().isoformat()
        return {"id": candidate_id, "name": f"{record['firstname']} {record['lastname']}",
                "firstname": record["firstname"], "lastname": record["lastname"], "headline": record["headline"],
                "account": ACCOUNT,
                "job": {"shortcode": shortcode(job), "title": self.collections["jobs"].get(job).record["title"]},
                "stage": stage[0], "stage_kind": stage[2], "disqualified": record["disqualified"],
                "withdrew": record["withdrew"], "disqualification_reason": record["disqualification_reason"],
                "sourced": record["sourced"],
                "profile_url": f"https://{SUBDOMAIN}.workable.com/backend/candidates/{candidate_id}",
                "email": record["email"], "domain": record["domain"],
                "created_at": iso_millis(entry.created_at), "updated_at": iso_millis(entry.modified_at),
                "hired_at": hired_at, "address": record["address"], "phone": record["phone"]}

    def _render_event(self, index: int, entry: Entry) -> dict:
        record = entry.record
        candidate = record["_candidate"]
        candidates = self.collections["candidates"]
        person = candidates.get(candidate).record
        job = person["_job"]
        members = self.collections["members"]
        return {"id": make_id("events", index), "title": record["title"], "description": record["description"],
                "type": record["type"], "starts_at": record["starts_at"], "ends_at": record["ends_at"],
                "cancelled": record["cancelled"],
                "candidate": {"id": make_id("candidates", candidate),
                              "name": f"{person['firstname']} {person['lastname']}"},
                "job": {"shortcode": shortcode(job), "title": self.collections["jobs"].get(job).record["title"]},
                "members": [{"id": make_id("members", m), "name": members.get(m).record["name"],
                             "status": status} for m, status in record["_members"]]}
