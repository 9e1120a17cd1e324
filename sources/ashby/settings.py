"""Ashby API: what we read, declared as data (API notes: sources/ashby/README.md)."""

from __future__ import annotations

from dataclasses import dataclass

from canonry.providers import ProbeSpec, ProviderObject, ProviderSpec, RateLimit, WebhookSpec

PAGE_SIZE = 100               # `limit` maximum (the server caps silently)
DEFAULT_FULL_SCAN_EVERY = "1d"  # a full pass (key scan) at least this often finds hard deletes


@dataclass(frozen=True)
class Endpoint:
    name: str                       # raw table (raw_ashby.<name>) and connection object name
    method: str                     # RPC path: POST /<method>
    sync_token: bool = False        # incremental passes by syncToken; else read whole every run
    archived_flag: str | None = None  # body flag that includes archived / deactivated records
    updated_at: tuple[str, ...] = ()  # payload paths tried in order for raw `remote_updated_at`


ENDPOINTS: dict[str, Endpoint] = {e.name: e for e in (
    Endpoint("candidates", "candidate.list", sync_token=True, updated_at=("updatedAt",)),
    Endpoint("applications", "application.list", sync_token=True, updated_at=("updatedAt",)),
    Endpoint("jobs", "job.list", sync_token=True, updated_at=("updatedAt",)),
    Endpoint("interview_schedules", "interviewSchedule.list", sync_token=True, updated_at=("updatedAt",)),
    # Offers carry no updatedAt: the decision time, else the latest version's creation.
    Endpoint("offers", "offer.list", sync_token=True, updated_at=("decidedAt", "latestVersion.createdAt")),
    Endpoint("users", "user.list", archived_flag="includeDeactivated", updated_at=("updatedAt",)),
    Endpoint("departments", "department.list", archived_flag="includeArchived", updated_at=("updatedAt",)),
    Endpoint("locations", "location.list", archived_flag="includeArchived"),
    Endpoint("archive_reasons", "archiveReason.list", archived_flag="includeArchived"),
    Endpoint("sources", "source.list", archived_flag="includeArchived"),
    Endpoint("interview_plans", "interviewPlan.list", archived_flag="includeArchived"),
    # Listed per interview plan (`interviewPlanId` required), not paged.
    Endpoint("interview_stages", "interviewStage.list"),
    # Custom field definitions (opt-in: read only by connections that list `custom_fields` in `objects`):
    # a whole list like the metadata above, so only new or changed definitions are written.
    Endpoint("custom_fields", "customField.list", archived_flag="includeArchived"),
)}
OPT_IN_OBJECTS: tuple[str, ...] = ("custom_fields",)
INTERVIEW_PLANS = "interview_plans"
FULL_PASSES_TABLE = "full_passes"   # one row per completed full pass of a sync-token object

# Logic errors (HTTP 200, success:false) that mean "this sync token / cursor is no good": discard the
# token and run a full pass instead.
RESTART_WITH_FULL_PASS: tuple[str, ...] = ("sync_token_expired", "sync_token_invalid", "incremental_sync_too_large",
                                           "next_cursor_expired", "invalid_next_cursor")
PERMISSION_ERRORS: tuple[str, ...] = ("missing_endpoint_permission",)

OBJECTS: tuple[str, ...] = tuple(ENDPOINTS)
PRIMARY_KEY = "remote_id"

# Ashby API-key permissions (per module, read/write) each object needs.
READ_SCOPES: dict[str, str] = {
    "candidates": "candidatesRead",
    "applications": "candidatesRead",
    "jobs": "jobsRead",
    "interview_schedules": "interviewsRead",
    "interview_plans": "interviewsRead",
    "interview_stages": "interviewsRead",
    "offers": "offersRead",
    "users": "organizationRead",
    "departments": "organizationRead",
    "locations": "organizationRead",
    "archive_reasons": "hiringProcessMetadataRead",
    "sources": "hiringProcessMetadataRead",
    "custom_fields": "hiringProcessMetadataRead",
}
WRITE_SCOPES: dict[str, str] = {
    "candidates": "candidatesWrite",
    "applications": "candidatesWrite",
}
AUTH_KINDS: tuple[str, ...] = ("api_key",)
DEFAULT_BASE_URL = "https://api.ashbyhq.com"

CANONICAL_TABLES: tuple[str, ...] = ("ats_candidates", "ats_applications", "ats_jobs", "ats_job_stages",
                                     "ats_interviews", "ats_offers", "ats_departments", "ats_offices", "ats_users")

# Raw payload fields that carry personal data, per raw table (read by canonry/governance/dsar.py: an
# erased person's own records have these replaced at any depth; every other field is scrubbed of their
# identifiers). Data, not code: a new personal field of the provider is one more name here.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "candidates": ("name", "primaryEmailAddress", "emailAddresses", "primaryPhoneNumber", "phoneNumbers",
                   "socialLinks", "location", "position", "company", "customFields"),
    "users": ("firstName", "lastName", "email"),
}

# What each object's records become: rows of these canonical tables (not every mart its raw table is joined
# into). `canonry validate` refuses an `objects:` list that leaves out the feeder of a table a listed
# object's rows reference (canonical.FOREIGN_KEYS: dbt's relationships tests would fail).
FEEDS: dict[str, tuple[str, ...]] = {
    "candidates": ("ats_candidates",), "applications": ("ats_applications",), "jobs": ("ats_jobs",),
    "interview_schedules": ("ats_interviews",), "offers": ("ats_offers",), "users": ("ats_users",),
    "departments": ("ats_departments",), "locations": ("ats_offices",), "interview_stages": ("ats_job_stages",),
}

SPEC = ProviderSpec(
    slug="ashby", family="ats", title="Ashby",
    auth_kinds=AUTH_KINDS, base_url=DEFAULT_BASE_URL, rate_limit=RateLimit(15, 1.0),
    objects=tuple(ProviderObject(e.name, cursor="syncToken" if e.sync_token else None,
                                 page_size=None if e.name == "interview_stages" else PAGE_SIZE,
                                 feeds=FEEDS.get(e.name, ()))
                  for e in ENDPOINTS.values()),
    opt_in_objects=OPT_IN_OBJECTS,
    deletes="full_pass", canonical_tables=CANONICAL_TABLES,
    resumable=tuple(e.name for e in ENDPOINTS.values() if e.sync_token),
    read_scopes=READ_SCOPES, write_scopes=WRITE_SCOPES,
    webhook=WebhookSpec("hmac-sha256 body, `Ashby-Signature: sha256=<hex>`",
                        ui_step="not registered by canonry yet: in Ashby, Admin > Integrations > Webhooks, add one "
                                "per event type with Request URL {url} and the secret token `webhooks.secret` names"),
    personal_fields=PERSONAL_FIELDS,
    probe=ProbeSpec("POST", "/user.list", json={"limit": 1}),
)
