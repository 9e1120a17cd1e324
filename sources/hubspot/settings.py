"""HubSpot CRM v3: what we read, declared as data (API notes: sources/hubspot/README.md)."""

from __future__ import annotations

from dataclasses import dataclass

from canonry.providers import OAuthSpec, ProbeSpec, ProviderObject, ProviderSpec, RateLimit, WebhookSpec

LIST_PAGE_SIZE = 100          # the list endpoint's maximum
SEARCH_PAGE_SIZE = 200        # the search endpoint's maximum
SEARCH_RESULT_CAP = 10_000    # paging past this is a 400: restart the query from the last cursor
SETTLE_SECONDS = 5            # search is eventually consistent: never advance the cursor past now - this
SEARCH_RATE_LIMIT = (4, 1.0)  # requests per second: the documented 5/s per account, minus a safety margin
ASSOCIATION_BATCH = 1_000     # ids per v4 association batch read (its maximum)


@dataclass(frozen=True)
class CrmObject:
    name: str
    cursor_property: str
    properties: tuple[str, ...]
    associations: tuple[str, ...] = ()


CRM_OBJECTS: dict[str, CrmObject] = {
    "contacts": CrmObject("contacts", "lastmodifieddate", (
        "email", "firstname", "lastname", "phone", "jobtitle", "lifecyclestage", "hs_lead_status", "hs_analytics_source",
        "hubspot_owner_id", "associatedcompanyid", "address", "city", "state", "zip", "country",
        "createdate", "lastmodifieddate", "notes_last_updated",
    ), ("companies",)),
    "companies": CrmObject("companies", "hs_lastmodifieddate", (
        "name", "domain", "industry", "numberofemployees", "phone", "address", "city", "state", "zip",
        "country", "description", "hubspot_owner_id", "createdate", "hs_lastmodifieddate", "notes_last_updated",
    )),
    "deals": CrmObject("deals", "hs_lastmodifieddate", (
        "dealname", "amount", "deal_currency_code", "closedate", "pipeline", "dealstage", "hubspot_owner_id",
        "description", "hs_is_closed", "hs_is_closed_won", "createdate", "hs_lastmodifieddate",
        "notes_last_updated",
    ), ("companies", "contacts")),
    # Engagements: their associations tie them to contacts, companies and deals.
    "notes": CrmObject("notes", "hs_lastmodifieddate", (
        "hs_note_body", "hs_timestamp", "hubspot_owner_id", "hs_createdate", "hs_lastmodifieddate",
    ), ("contacts", "companies", "deals")),
    "tasks": CrmObject("tasks", "hs_lastmodifieddate", (
        "hs_task_subject", "hs_task_body", "hs_task_status", "hs_task_priority", "hs_task_completion_date",
        "hs_timestamp", "hubspot_owner_id", "hs_createdate", "hs_lastmodifieddate",
    ), ("contacts", "companies", "deals")),
    "calls": CrmObject("calls", "hs_lastmodifieddate", (
        "hs_call_title", "hs_call_body", "hs_call_direction", "hs_call_duration", "hs_call_status",
        "hs_timestamp", "hubspot_owner_id", "hs_createdate", "hs_lastmodifieddate",
    ), ("contacts", "companies", "deals")),
    "meetings": CrmObject("meetings", "hs_lastmodifieddate", (
        "hs_meeting_title", "hs_meeting_body", "hs_meeting_start_time", "hs_meeting_end_time",
        "hs_meeting_outcome", "hs_timestamp", "hubspot_owner_id", "hs_createdate", "hs_lastmodifieddate",
    ), ("contacts", "companies", "deals")),
    "emails": CrmObject("emails", "hs_lastmodifieddate", (
        "hs_email_subject", "hs_email_text", "hs_email_direction", "hs_timestamp", "hubspot_owner_id",
        "hs_createdate", "hs_lastmodifieddate",
    ), ("contacts", "companies", "deals")),
}

# Small reference objects, read whole every run.
OWNERS_PATH = "/crm/v3/owners"
PIPELINES_PATH = "/crm/v3/pipelines/deals"
OBJECTS_PATH = "/crm/v3/objects/{object}"
SEARCH_PATH = "/crm/v3/objects/{object}/search"

# Custom property definitions (`GET /crm/v3/properties/{object}`, `hubspotDefined: false`) of the objects
# canonical `custom_fields` are named for. Read only by connections that list `custom_properties` in their
# `objects` (opt-in: three more calls per run); then those objects' reads also ask for the custom properties.
PROPERTIES_PATH = "/crm/v3/properties/{object}"
CUSTOM_PROPERTY_OBJECTS: tuple[str, ...] = ("contacts", "companies", "deals")
OPT_IN_OBJECTS: tuple[str, ...] = ("custom_properties",)

OBJECTS: tuple[str, ...] = (*CRM_OBJECTS, "owners", "pipelines", *OPT_IN_OBJECTS)
# Objects whose resource checkpoints (`state["resume"]`): each pipeline run takes at most
# `runtime.checkpoint_pages` pages and a later run continues (docs/DEVELOPING.md, "Checkpoints").
RESUMABLE: tuple[str, ...] = tuple(CRM_OBJECTS)
PRIMARY_KEY = "remote_id"

READ_SCOPES: dict[str, str] = {
    "contacts": "crm.objects.contacts.read",
    "companies": "crm.objects.companies.read",
    "deals": "crm.objects.deals.read",
    "owners": "crm.objects.owners.read",
    "pipelines": "crm.objects.deals.read",
    # Engagements are readable with contact read access (there are no per-engagement read scopes).
    "notes": "crm.objects.contacts.read",
    "tasks": "crm.objects.contacts.read",
    "calls": "crm.objects.contacts.read",
    "meetings": "crm.objects.contacts.read",
    "emails": "crm.objects.contacts.read",
    "custom_properties": ("crm.schemas.contacts.read", "crm.schemas.companies.read", "crm.schemas.deals.read"),
}
WRITE_SCOPES: dict[str, str] = {
    "contacts": "crm.objects.contacts.write",
    "companies": "crm.objects.companies.write",
    "deals": "crm.objects.deals.write",
}
AUTH_KINDS: tuple[str, ...] = ("oauth2", "api_key")
DEFAULT_BASE_URL = "https://api.hubapi.com"
AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
TOKEN_PATH = "/oauth/v1/token"
REVOKE_PATH = "/oauth/2026-03/token/revoke"
BASE_SCOPES: tuple[str, ...] = ("oauth",)   # every HubSpot OAuth app asks for `oauth`
TOKEN_AUTH_METHOD = "client_secret_post"   # client id and secret in the form body

# Canonical tables this provider feeds (the gate validates only tables some connection feeds).
CANONICAL_TABLES: tuple[str, ...] = ("crm_accounts", "crm_contacts", "crm_leads", "crm_opportunities", "crm_users",
                                     "crm_stages", "crm_notes", "crm_tasks", "crm_engagements")

# Raw payload fields that carry personal data, per raw table (read by canonry/governance/dsar.py: an
# erased person's own records have these replaced at any depth; every other field is scrubbed of their
# identifiers). Data, not code: a new personal field of the provider is one more name here.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "contacts": ("firstname", "lastname", "email", "phone", "mobilephone", "address", "city", "zip", "jobtitle",
                 "company"),
    "owners": ("firstName", "lastName", "email"),
}

# What each object's records become: rows of these canonical tables (not every mart its raw table is joined
# into). `canonry validate` refuses an `objects:` list that leaves out the feeder of a table a listed
# object's rows reference (canonical.FOREIGN_KEYS: dbt's relationships tests would fail).
FEEDS: dict[str, tuple[str, ...]] = {
    "contacts": ("crm_contacts", "crm_leads"),   # a contact in a lead lifecycle stage is also a lead
    "companies": ("crm_accounts",),
    "deals": ("crm_opportunities",),
    "notes": ("crm_notes",),
    "tasks": ("crm_tasks",),
    "calls": ("crm_engagements",), "meetings": ("crm_engagements",), "emails": ("crm_engagements",),
    "owners": ("crm_users",),
    "pipelines": ("crm_stages",),                # the deal pipelines' stages
}

SPEC = ProviderSpec(
    slug="hubspot", family="crm", title="HubSpot CRM v3",
    auth_kinds=AUTH_KINDS, base_url=DEFAULT_BASE_URL, rate_limit=RateLimit(100, 10.0),
    objects=(*(ProviderObject(o.name, cursor=o.cursor_property, page_size=SEARCH_PAGE_SIZE, feeds=FEEDS[o.name])
               for o in CRM_OBJECTS.values()),
             ProviderObject("owners", page_size=LIST_PAGE_SIZE, feeds=FEEDS["owners"]),
             ProviderObject("pipelines", feeds=FEEDS["pipelines"]),
             *(ProviderObject(name) for name in OPT_IN_OBJECTS)),
    opt_in_objects=OPT_IN_OBJECTS, resumable=RESUMABLE,
    deletes="archived_listing", canonical_tables=CANONICAL_TABLES,
    read_scopes=READ_SCOPES, write_scopes=WRITE_SCOPES,
    oauth=OAuthSpec(authorize_url=AUTHORIZE_URL, token_path=TOKEN_PATH, revoke_path=REVOKE_PATH,
                    base_scopes=BASE_SCOPES, token_auth_method=TOKEN_AUTH_METHOD),
    webhook=WebhookSpec("v3 signature: hmac-sha256 of method + URL + body + timestamp",
                        ui_step="HubSpot app webhook subscriptions belong to the app (its developer account), not "
                                "to this connection's token: in the app's settings, Webhooks, set Target URL {url} "
                                "and subscribe to contact/company/deal creation, propertyChange and deletion"),
    write_back=("contacts", "companies", "deals"),
    personal_fields=PERSONAL_FIELDS,
    probe=ProbeSpec("GET", "/crm/v3/owners", {"limit": 1}),
)
