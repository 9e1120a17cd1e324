"""Greenhouse Harvest v3: what we read, declared as data (API notes: sources/greenhouse/README.md)."""

from __future__ import annotations

from canonry.providers import OAuthSpec, ProbeSpec, ProviderObject, ProviderSpec, RateLimit, WebhookSpec

DEFAULT_BASE_URL = "https://harvest.greenhouse.io"
LIST_PATH = "/v3/{resource}"

# Authentication: OAuth 2.0 client credentials (custom integrations). Basic client id/secret, form
# `grant_type=client_credentials&sub=<Greenhouse user id>`; one-hour tokens.
AUTH_KINDS: tuple[str, ...] = ("client_credentials",)
CLIENT_CREDENTIALS_GRANT = True
TOKEN_URL = "https://auth.greenhouse.io/token"
TOKEN_PATH = "/token"          # used as base_url + TOKEN_PATH when base_url is overridden (sandbox)

PER_PAGE = 500                 # the maximum we send; `per_page` goes on the first request only
SETTLE_SECONDS = 5             # never advance the cursor past run start minus this
UPDATED_FILTER = "updated_at"  # incremental: `updated_at=gte|<ISO>` (inclusive; boundary de-duplicated)
FILTER_FORMAT = "gte|{at}"
RATE_LIMIT_INTERVAL_SECONDS = 10.0  # X-RateLimit-Limit counts per rolling 10 s

# Deletes: Greenhouse has no delete feed. A periodic full key scan (runtime.options["full_scan_every"],
# default daily) writes every id it sees to raw_greenhouse.<object>_key_scans; staging flags records
# absent from the latest completed scan.
DEFAULT_FULL_SCAN_EVERY = "1d"
KEY_SCAN_SUFFIX = "_key_scans"
KEY_SCAN_MARKER = "*"          # the row written when a scan completes (remote_id of the marker)

# Custom field definitions: `GET /v3/custom_fields` (every field_type in one list; v1's
# `/v1/custom_fields/{field_type}` became a filter). Opt-in object `custom_fields`: read whole every run
# (one call: far fewer than 500 fields) by connections that list it in `objects`, written when new or changed.
CUSTOM_FIELDS_PATH = "/v3/custom_fields"
CUSTOM_FIELD_KEYS = ("name", "field_type", "value_type", "name_key", "active", "private")
OPT_IN_OBJECTS: tuple[str, ...] = ("custom_fields",)

RECORD_OBJECTS: tuple[str, ...] = ("candidates", "applications", "jobs", "job_stages", "scheduled_interviews",
                                   "offers", "departments", "offices", "users")
OBJECTS: tuple[str, ...] = (*RECORD_OBJECTS, *OPT_IN_OBJECTS)
PRIMARY_KEY = "remote_id"

READ_SCOPES: dict[str, str] = {name: f"harvest:{name}:list" for name in OBJECTS}
WRITE_SCOPES: dict[str, str] = {}

# Canonical tables this provider feeds (the gate validates only tables some connection feeds).
CANONICAL_TABLES: tuple[str, ...] = ("ats_candidates", "ats_applications", "ats_jobs", "ats_job_stages",
                                     "ats_interviews", "ats_offers", "ats_departments", "ats_offices", "ats_users")

# Raw payload fields that carry personal data, per raw table (read by canonry/governance/dsar.py: an
# erased person's own records have these replaced at any depth; every other field is scrubbed of their
# identifiers). Data, not code: a new personal field of the provider is one more name here.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "candidates": ("first_name", "last_name", "company", "title", "email_addresses", "phone_numbers", "addresses",
                   "website_addresses", "social_media_addresses", "custom_fields", "keyed_custom_fields"),
    "users": ("first_name", "last_name", "name", "primary_email_address", "emails"),
}

# What each object's records become: rows of these canonical tables (not every mart its raw table is joined
# into). `canonry validate` refuses an `objects:` list that leaves out the feeder of a table a listed
# object's rows reference (canonical.FOREIGN_KEYS: dbt's relationships tests would fail).
FEEDS: dict[str, tuple[str, ...]] = {
    "candidates": ("ats_candidates",), "applications": ("ats_applications",), "jobs": ("ats_jobs",),
    "job_stages": ("ats_job_stages",), "scheduled_interviews": ("ats_interviews",), "offers": ("ats_offers",),
    "departments": ("ats_departments",), "offices": ("ats_offices",), "users": ("ats_users",),
}

SPEC = ProviderSpec(
    slug="greenhouse", family="ats", title="Greenhouse Harvest v3",
    auth_kinds=AUTH_KINDS, base_url=DEFAULT_BASE_URL,
    rate_limit=RateLimit(50, RATE_LIMIT_INTERVAL_SECONDS),
    objects=(*(ProviderObject(name, cursor=UPDATED_FILTER, page_size=PER_PAGE, feeds=FEEDS[name]) for name in RECORD_OBJECTS),
             *(ProviderObject(name, page_size=PER_PAGE) for name in OPT_IN_OBJECTS)),
    opt_in_objects=OPT_IN_OBJECTS,
    deletes="key_scan", canonical_tables=CANONICAL_TABLES, resumable=RECORD_OBJECTS,
    read_scopes=READ_SCOPES, write_scopes=WRITE_SCOPES,
    oauth=OAuthSpec(token_url=TOKEN_URL, token_path=TOKEN_PATH, client_credentials=CLIENT_CREDENTIALS_GRANT),
    webhook=WebhookSpec("hmac-sha256 body, `Signature: sha256 <hex>`",
                        ui_step="Greenhouse has no API to create web hooks: in Greenhouse, Configure > Dev Center > "
                                "Web Hooks, add one per event with Endpoint URL {url} and the secret key "
                                "`webhooks.secret` names"),
    personal_fields=PERSONAL_FIELDS,
    probe=ProbeSpec("GET", "/v3/offices", {"per_page": 1}),
)
