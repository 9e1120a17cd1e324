"""Pipedrive: what we read, declared as data (API notes: sources/pipedrive/README.md, sources/pipedrive/README.md)."""

from __future__ import annotations

from dataclasses import dataclass

from canonry.providers import OAuthSpec, ProbeSpec, ProviderObject, ProviderSpec, RateLimit, WebhookSpec

PAGE_SIZE = 500               # the maximum of every v1 and v2 list
SETTLE_SECONDS = 5            # never advance a cursor past now - this (writes still committing)
TIMESTAMP_PRECISION_SECONDS = 1  # update_time has whole seconds: versions in the last second are not remembered


@dataclass(frozen=True)
class CursorObject:
    """An API v2 list read incrementally with `updated_since` on `update_time`."""

    name: str
    path: str
    statuses: str | None = None       # deals: list deleted ones too (`status=…,deleted`)
    recents_item: str | None = None   # deletes come from /v1/recents (v2 lists exclude deleted records)


CURSOR_OBJECTS: dict[str, CursorObject] = {
    "persons": CursorObject("persons", "/api/v2/persons", recents_item="person"),
    "organizations": CursorObject("organizations", "/api/v2/organizations", recents_item="organization"),
    "deals": CursorObject("deals", "/api/v2/deals", statuses="open,won,lost,deleted"),
    "activities": CursorObject("activities", "/api/v2/activities", recents_item="activity"),
}

RECENTS_PATH = "/v1/recents"       # since_timestamp (YYYY-MM-DD HH:MM:SS, UTC), items, start/limit
NOTES_PATH = "/v1/notes"           # v1 offset list; incremental through /v1/recents?items=note
NOTES_RECENTS_ITEM = "note"
LEADS_PATH = "/v1/leads"           # v1 offset list, no updated_since: incremental = newest first, stop at cursor
USERS_PATH = "/v1/users"           # every user in one answer (no pagination)
STAGES_PATH = "/api/v2/stages"     # small reference lists, read whole every run
PIPELINES_PATH = "/api/v2/pipelines"
REFERENCE_PATHS: dict[str, str] = {"stages": STAGES_PATH, "pipelines": PIPELINES_PATH}

# Custom field definitions of the entities whose records carry custom fields (v1 offset lists). Read whole
# every run, but only by connections that list `custom_fields` in their `objects` (opt-in: three more
# calls per run); without them canonical `custom_fields` keep Pipedrive's hash keys.
FIELD_DEFINITION_PATHS: dict[str, str] = {
    "person": "/v1/personFields", "organization": "/v1/organizationFields", "deal": "/v1/dealFields",
}
OPT_IN_OBJECTS: tuple[str, ...] = ("custom_fields",)

OBJECTS: tuple[str, ...] = (*CURSOR_OBJECTS, "notes", "leads", "users", "stages", "pipelines", *OPT_IN_OBJECTS)
PRIMARY_KEY = "remote_id"
API_TOKEN_HEADER = "x-api-token"   # preferred over the `api_token` query parameter: never in URLs or logs

# OAuth scopes (Pipedrive Marketplace apps). Notes are readable with the scope of the entity they hang
# on; `contacts:read` is what we ask for [unverified].
READ_SCOPES: dict[str, str] = {
    "persons": "contacts:read",
    "organizations": "contacts:read",
    "deals": "deals:read",
    "activities": "activities:read",
    "notes": "contacts:read",
    "leads": "leads:read",
    "users": "users:read",
    "stages": "deals:read",
    "pipelines": "deals:read",
    "custom_fields": "contacts:read",   # [unverified] field definitions are readable with the entity's scope
}
RECENTS_SCOPE = "recents:read"
WRITE_SCOPES: dict[str, str] = {
    "persons": "contacts:full",
    "organizations": "contacts:full",
    "deals": "deals:full",
}
AUTH_KINDS: tuple[str, ...] = ("api_key", "oauth2")
DEFAULT_BASE_URL = "https://api.pipedrive.com"   # or https://<company>.pipedrive.com; OAuth answers give api_domain
AUTHORIZE_URL = "https://oauth.pipedrive.com/oauth/authorize"
TOKEN_URL = "https://oauth.pipedrive.com/oauth/token"

# Canonical tables this provider feeds (the gate validates only tables some connection feeds).
CANONICAL_TABLES: tuple[str, ...] = (
    "crm_accounts", "crm_contacts", "crm_leads", "crm_opportunities", "crm_stages", "crm_users", "crm_notes",
    "crm_tasks", "crm_engagements",
)

# Raw payload fields that carry personal data, per raw table (read by canonry/governance/dsar.py: an
# erased person's own records have these replaced at any depth; every other field is scrubbed of their
# identifiers). Data, not code: a new personal field of the provider is one more name here.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "persons": ("name", "first_name", "last_name", "emails", "phones", "email", "phone", "job_title",
                "postal_address", "custom_fields"),
    "users": ("name", "email"),
}

# What each object's records become: rows of these canonical tables (not every mart its raw table is joined
# into). `canonry validate` refuses an `objects:` list that leaves out the feeder of a table a listed
# object's rows reference (canonical.FOREIGN_KEYS: dbt's relationships tests would fail).
FEEDS: dict[str, tuple[str, ...]] = {
    "persons": ("crm_contacts",), "organizations": ("crm_accounts",), "deals": ("crm_opportunities",),
    "activities": ("crm_tasks", "crm_engagements"),   # by activity type
    "notes": ("crm_notes",), "leads": ("crm_leads",), "users": ("crm_users",),
    "stages": ("crm_stages",),                        # pipelines only name the stages' pipeline
}

SPEC = ProviderSpec(
    slug="pipedrive", family="crm", title="Pipedrive",
    auth_kinds=AUTH_KINDS, base_url=DEFAULT_BASE_URL, rate_limit=RateLimit(80, 2.0),
    objects=(*(ProviderObject(o.name, cursor="update_time", page_size=PAGE_SIZE, feeds=FEEDS[o.name]) for o in CURSOR_OBJECTS.values()),
             ProviderObject("notes", cursor="update_time", page_size=PAGE_SIZE, feeds=FEEDS["notes"]),
             ProviderObject("leads", cursor="update_time", page_size=PAGE_SIZE, feeds=FEEDS["leads"]),
             ProviderObject("users", feeds=FEEDS["users"]),
             ProviderObject("stages", page_size=PAGE_SIZE, feeds=FEEDS["stages"]),
             ProviderObject("pipelines", page_size=PAGE_SIZE), *(ProviderObject(name) for name in OPT_IN_OBJECTS)),
    opt_in_objects=OPT_IN_OBJECTS, resumable=tuple(CURSOR_OBJECTS),
    deletes="recents", canonical_tables=CANONICAL_TABLES,
    read_scopes=READ_SCOPES, write_scopes=WRITE_SCOPES,
    oauth=OAuthSpec(authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL),
    webhook=WebhookSpec("HTTP basic auth on the delivery", settings=("username", "secret")),
    write_back=("persons", "organizations", "deals"),
    personal_fields=PERSONAL_FIELDS,
    probe=ProbeSpec("GET", "/api/v2/stages", {"limit": 1}),
)
