"""Lever Data API v1: what we read, declared as data (API notes: sources/lever/README.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from canonry.providers import OAuthSpec, ProbeSpec, ProviderObject, ProviderSpec, RateLimit, WebhookSpec

PAGE_SIZE = 100               # `limit` is 1-100 on every list
SETTLE_SECONDS = 5            # never advance a cursor past now - this (writes landing during the run)
API_PREFIX = "/v1"


@dataclass(frozen=True)
class IncrementalList:
    """A list read with `updated_at_start` (epoch ms, inclusive) after the first full read."""

    name: str
    path: str
    params: dict[str, str | list[str]] = field(default_factory=dict)
    deleted_path: str | None = None   # the deleted feed (`deleted_at_start`), if the object has one


INCREMENTAL: dict[str, IncrementalList] = {
    # confidentiality=all: the default listing silently hides confidential opportunities.
    # expand=applications: the posting (-> job) comes inline instead of one call per application.
    "opportunities": IncrementalList("opportunities", "/v1/opportunities",
                                     {"confidentiality": "all", "expand": ["applications"]},
                                     deleted_path="/v1/opportunities/deleted"),
    "postings": IncrementalList("postings", "/v1/postings"),
}

# Children listed per opportunity (Lever has no org-wide list): one call per changed opportunity.
# Raw grain: one row per opportunity read, remote_id = the opportunity id, payload = the JSON array of
# the child objects exactly as received (the concatenated `data` of its pages).
CHILDREN: dict[str, str] = {
    "interviews": "/v1/opportunities/{id}/interviews",
    "offers": "/v1/opportunities/{id}/offers",
}

# Small reference lists read whole every run (constant cost). `stages` is stored as one row per read
# (remote_id "pipeline", payload = the ordered array): the list order *is* the pipeline order.
WHOLE: dict[str, tuple[str, dict[str, str]]] = {
    "users": ("/v1/users", {"includeDeactivated": "true"}),
    "stages": ("/v1/stages", {}),
    "archive_reasons": ("/v1/archive_reasons", {}),
}
SNAPSHOT_OBJECTS: tuple[str, ...] = ("stages",)

OBJECTS: tuple[str, ...] = ("opportunities", "interviews", "offers", "postings", "users", "stages",
                            "archive_reasons")
PRIMARY_KEY = "remote_id"

READ_SCOPES: dict[str, str] = {
    "opportunities": "opportunities:read:admin",
    "interviews": "interviews:read:admin",
    "offers": "offers:read:admin",
    "postings": "postings:read:admin",
    "users": "users:read:admin",
    "stages": "stages:read:admin",
    "archive_reasons": "archive_reasons:read:admin",
}
# Also requested at authorisation: refresh tokens and confidential records.
EXTRA_SCOPES: tuple[str, ...] = ("offline_access", "confidential:access:admin")
WRITE_SCOPES: dict[str, str] = {
    "opportunities": "opportunities:write:admin",
    "postings": "postings:write:admin",
}
AUTH_KINDS: tuple[str, ...] = ("oauth2", "api_key")
DEFAULT_BASE_URL = "https://api.lever.co"
# Lever's Auth0 tenant. With a connection `base_url` (the local sandbox) the OAuth endpoints are that origin
# + these paths (canonry.oauth_endpoints.endpoints): the sandbox serves /authorize, /oauth/token and /oauth/revoke like
# the real auth host, so a sandbox connection needs no auth.*_url or auth.params override (AUDIENCE below
# is sent by default). A connection to a different Auth0 host (Lever's own sandbox environment) sets
# auth.authorize_url / token_url / params.audience explicitly.
AUTHORIZE_URL = "https://auth.lever.co/authorize"
TOKEN_URL = "https://auth.lever.co/oauth/token"
REVOKE_URL = "https://auth.lever.co/oauth/revoke"
AUDIENCE = "https://api.lever.co/v1/"   # Auth0: sent on authorize and on every token request
ACCESS_TOKEN_SECONDS = 3600

CANONICAL_TABLES: tuple[str, ...] = ("ats_candidates", "ats_applications", "ats_jobs", "ats_job_stages",
                                     "ats_interviews", "ats_offers", "ats_users", "ats_departments",
                                     "ats_offices")

# Raw payload fields that carry personal data, per raw table (read by canonry/governance/dsar.py: an
# erased person's own records have these replaced at any depth; every other field is scrubbed of their
# identifiers). Data, not code: a new personal field of the provider is one more name here.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    # customQuestions: a candidate's answers to custom questions (applications[], with expand=applications)
    "opportunities": ("name", "headline", "emails", "phones", "links", "location", "contact", "customQuestions"),
    "users": ("name", "email"),
}

# Both passes checkpoint (canonry.checkpoints); the opportunities pass carries its interviews and offers.
RESUMABLE: tuple[str, ...] = ("opportunities", "postings")

# What each object's records become: rows of these canonical tables (not every mart its raw table is joined
# into). `canonry validate` refuses an `objects:` list that leaves out the feeder of a table a listed
# object's rows reference (canonical.FOREIGN_KEYS: dbt's relationships tests would fail).
FEEDS: dict[str, tuple[str, ...]] = {
    "opportunities": ("ats_candidates", "ats_applications"),   # an opportunity carries its candidate
    "postings": ("ats_jobs", "ats_departments", "ats_offices"),  # departments and offices are named on postings
    "interviews": ("ats_interviews",), "offers": ("ats_offers",), "users": ("ats_users",),
    "stages": ("ats_job_stages",),
}

SPEC = ProviderSpec(
    slug="lever", family="ats", title="Lever Data API v1",
    auth_kinds=AUTH_KINDS, base_url=DEFAULT_BASE_URL, rate_limit=RateLimit(10, 1.0),
    objects=tuple(ProviderObject(name, cursor="updated_at" if name in INCREMENTAL else None, page_size=PAGE_SIZE,
                                 feeds=FEEDS.get(name, ()))
                  for name in OBJECTS),
    deletes="deleted_feed", canonical_tables=CANONICAL_TABLES, resumable=RESUMABLE,
    read_scopes=READ_SCOPES, write_scopes=WRITE_SCOPES,
    oauth=OAuthSpec(authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL, revoke_url=REVOKE_URL,
                    base_scopes=EXTRA_SCOPES, audience=AUDIENCE, access_token_seconds=ACCESS_TOKEN_SECONDS),
    webhook=WebhookSpec("hmac-sha256 of token + triggeredAt, in the body"),
    personal_fields=PERSONAL_FIELDS,
    probe=ProbeSpec("GET", "/v1/users", {"limit": 1}),
)
