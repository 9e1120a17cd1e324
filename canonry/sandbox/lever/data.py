"""Lever sandbox data: constants, id codecs, record factories (pure functions of seed and index), relations
and rendering. The data model is described in `api.py`."""


from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from canonry.sandbox.collection import Collection, Entry, base_modified_at
from canonry.sandbox.datagen import CITIES, DEPARTMENTS, JOB_TITLES, Faker
from canonry.sandbox.kit import hex_suffix_ids

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
    return _CODECS[kind][0](index)


def parse_uid(kind: str) -> Callable[[str], int | None]:
    return _CODECS[kind][1]


# Lever ids are UUIDs; ours are UUID-shaped with a per-object prefix and the index.
_CODECS = {kind: hex_suffix_ids(f"{tag:08x}-0000-4000-8000-") for kind, tag in TAGS.items()}


def contact_of(index: int) -> int:
    """Base opportunity -> contact index (every 7th opportunity is a contact's second one)."""
    return index - 1 if index % 7 == 4 else index


def signature(signature_token: str, token: str, triggered_at: int) -> str:
    """Lever's webhook signature: hex HMAC-SHA256(signatureToken, token + str(triggeredAt))."""
    return hmac.new(signature_token.encode(), (token + str(triggered_at)).encode(), hashlib.sha256).hexdigest()


class LeverData:
    """The records of the Lever simulator and their v1 JSON."""

    collections: dict[str, Collection]

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
            if getattr(self, "custom", None) is not None:   # custom questions (option custom_fields)
                app["customQuestions"] = self.custom.forms(index, app["id"], app["createdAt"])
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
