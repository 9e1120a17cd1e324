"""Workable SPI v3: what we read, declared as data (API notes: sources/workable/README.md)."""

from __future__ import annotations

from dataclasses import dataclass

from canonry.providers import ProbeSpec, ProviderObject, ProviderSpec, RateLimit, WebhookSpec

# The API lives on the account's own host: a connection must name it (`base_url:
# https://<subdomain>.workable.com`); this placeholder is refused at sync time with that instruction.
DEFAULT_BASE_URL = "https://<subdomain>.workable.com"
SUBDOMAIN_PLACEHOLDER = "<subdomain>"
API_PREFIX = "/spi/v3"
PAGE_SIZE = 100               # `limit` maximum (default 50)
SETTLE_SECONDS = 5            # never advance a cursor past now - this (writes landing during the run)
# `updated_after` is exclusive ("updated after"): ask from this much earlier so a record updated at the
# cursor itself is read again (and dropped by boundary de-duplication) rather than missed.
EXCLUSIVE_FILTER_MARGIN_SECONDS = 1
# Account tokens: 10 requests per 10-second interval (OAuth and partner tokens: 50 per 10 s).
RATE_LIMIT = RateLimit(10, 10.0)


@dataclass(frozen=True)
class Listing:
    """One list endpoint: where it is, which key of the answer holds the records, how it is read."""

    name: str                          # raw table raw_workable.<name> and connection object name
    path: str                          # under API_PREFIX
    key: str | None                    # the answer's array key; None: the answer is a bare array
    paged: bool = True                 # `limit` / `paging.next`
    incremental: bool = False          # `updated_after` from the stored cursor after the first full read
    params: tuple[tuple[str, str], ...] = ()
    id_field: str = "id"
    updated_field: str | None = None   # the record's modification time; None: the read time orders versions


LISTINGS: dict[str, Listing] = {e.name: e for e in (
    Listing("candidates", "/candidates", "candidates", incremental=True, updated_field="updated_at"),
    # Jobs of every state (draft, published, closed, archived): the list is small, read whole each run.
    # Keyed by shortcode: candidates and events name their job by it, and /jobs/{shortcode} addresses it.
    Listing("jobs", "/jobs", "jobs", id_field="shortcode", updated_field="updated_at"),
    Listing("members", "/members", "members"),
    # Interview events only (calls and meetings are not interviews); events carry no modification time,
    # so they are read whole.
    Listing("events", "/events", "events", params=(("type", "interview"),)),
    Listing("stages", "/stages", "stages", paged=False, id_field="slug"),
    Listing("departments", "/departments", None, paged=False),
)}
OBJECTS: tuple[str, ...] = tuple(LISTINGS)

# Workable token scopes per object (an account token is created with a subset of these).
READ_SCOPES: dict[str, str] = {
    "candidates": "r_candidates", "jobs": "r_jobs", "members": "r_account", "events": "r_candidates",
    "stages": "r_jobs", "departments": "r_account",
}
WRITE_SCOPES: dict[str, str] = {}

CANONICAL_TABLES: tuple[str, ...] = ("ats_candidates", "ats_applications", "ats_jobs", "ats_job_stages",
                                     "ats_interviews", "ats_departments", "ats_offices", "ats_users")

# Raw payload fields that carry personal data, per raw table (canonry/governance/dsar.py).
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "candidates": ("name", "firstname", "lastname", "headline", "email", "phone", "address"),
    "events": ("candidate",),
    "members": ("name", "email", "headline"),
}

# What each object's records become: rows of these canonical tables (not every mart its raw table is joined
# into). `canonry validate` refuses an `objects:` list that leaves out the feeder of a table a listed
# object's rows reference (canonical.FOREIGN_KEYS: dbt's relationships tests would fail).
FEEDS: dict[str, tuple[str, ...]] = {
    "candidates": ("ats_candidates", "ats_applications"),   # a Workable candidate is one application to one job
    "jobs": ("ats_jobs", "ats_offices"),                    # offices are the jobs' locations
    "members": ("ats_users",), "events": ("ats_interviews",), "stages": ("ats_job_stages",),
    "departments": ("ats_departments",),
}

SPEC = ProviderSpec(
    slug="workable", family="ats", title="Workable SPI v3",
    auth_kinds=("api_key",), base_url=DEFAULT_BASE_URL, rate_limit=RATE_LIMIT,
    objects=tuple(ProviderObject(e.name, cursor="updated_at" if e.incremental else None,
                                 page_size=PAGE_SIZE if e.paged else None,
                                 feeds=FEEDS[e.name]) for e in LISTINGS.values()),
    # Workable keeps what recruiters remove (disqualified candidates, archived jobs stay listed with their
    # flag); whole-read lists get tombstones for records that vanish (helpers.vanished_table).
    deletes="archived_listing", canonical_tables=CANONICAL_TABLES,
    read_scopes=READ_SCOPES, write_scopes=WRITE_SCOPES,
    personal_fields=PERSONAL_FIELDS,
    # `webhooks.secret` names the signing key: the account token itself (or the OAuth app's secret).
    webhook=WebhookSpec("hmac-sha256 body, `X-Workable-Signature: <hex>`, keyed with the account token"),
    probe=ProbeSpec("GET", "/spi/v3/members", {"limit": 1}),
)
