"""Ashby sandbox data: constants, object specs, id codecs, record factories (pure functions of seed and
index) and rendering."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.datagen import CITIES, DEPARTMENTS, JOB_TITLES, Faker
from canonry.sandbox.kit import hex_suffix_ids, iso_millis

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


class AshbyError(Exception):
    """A logic error answered as HTTP 200 with `success: false`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def uuid_ids(namespace: int) -> tuple[Callable[[int], str], Callable[[str], int | None]]:
    return hex_suffix_ids(f"{namespace:08x}-a5b1-4c00-8000-", exact_length=True)


class AshbyData:
    """The records of the Ashby simulator and their JSON."""

    sizes: dict[str, int]
    faker: dict[str, Faker]
    collections: dict[str, Collection]

    # -- ids ----------------------------------------------------------------------------------
    def id_of(self, name: str, index: int) -> str:
        return self.collections[name].id_of(index) if name in self.collections else uuid_ids(
            SPECS[name].namespace)[0](index)

    def _ref(self, name: str, index: int) -> str:
        return uuid_ids(SPECS[name].namespace)[0](index)

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
            record["archivedAt"] = iso_millis(datetime(2025, 3, 1, tzinfo=UTC) + timedelta(minutes=index))
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
            "openedAt": iso_millis(opened) if status != "Draft" else None,
            "closedAt": iso_millis(opened + timedelta(days=60)) if status in ("Closed", "Archived") else None,
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
                "createdAt": iso_millis(start - timedelta(days=3)),
                "startTime": iso_millis(begin),
                "endTime": iso_millis(begin + timedelta(minutes=45)),
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
        decided = iso_millis(created + timedelta(days=5)) if offer_status in ("CandidateAccepted",
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
                "createdAt": iso_millis(created),
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
        if getattr(self, "custom", None) is not None and "customFields" in body:
            body["customFields"] = self.custom.retitled(body["customFields"])
        if name in ("candidates", "applications", "jobs", "interview_schedules", "users", "departments"):
            body["createdAt"] = iso_millis(entry.created_at)
            body["updatedAt"] = iso_millis(entry.modified_at)
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
