"""HubSpot CRM v3: what we read, declared as data (shared/reference/providers.md §1)."""

from __future__ import annotations

from dataclasses import dataclass

LIST_PAGE_SIZE = 100          # the list endpoint's maximum
SEARCH_PAGE_SIZE = 200        # the search endpoint's maximum
SEARCH_RESULT_CAP = 10_000    # paging past this is a 400: restart the query from the last cursor
SETTLE_SECONDS = 5            # search is eventually consistent: never advance the cursor past now - this


@dataclass(frozen=True)
class CrmObject:
    name: str
    cursor_property: str
    properties: tuple[str, ...]
    associations: tuple[str, ...] = ()


CRM_OBJECTS: dict[str, CrmObject] = {
    "contacts": CrmObject("contacts", "lastmodifieddate", (
        "email", "firstname", "lastname", "phone", "jobtitle", "lifecyclestage", "hs_lead_status",
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
}

# Small reference objects, read whole every run.
OWNERS_PATH = "/crm/v3/owners"
PIPELINES_PATH = "/crm/v3/pipelines/deals"
OBJECTS_PATH = "/crm/v3/objects/{object}"
SEARCH_PATH = "/crm/v3/objects/{object}/search"

OBJECTS: tuple[str, ...] = (*CRM_OBJECTS, "owners", "pipelines")
# Objects whose resource checkpoints per page (`state["resume"]`): the pipeline may stop them after
# any page and a later run continues (docs/DEVELOPING.md, "Checkpoints").
RESUMABLE: tuple[str, ...] = tuple(CRM_OBJECTS)
PRIMARY_KEY = "remote_id"

READ_SCOPES: dict[str, str] = {
    "contacts": "crm.objects.contacts.read",
    "companies": "crm.objects.companies.read",
    "deals": "crm.objects.deals.read",
    "owners": "crm.objects.owners.read",
    "pipelines": "crm.objects.deals.read",
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

# Canonical tables this provider feeds (the gate validates only tables some connection feeds).
CANONICAL_TABLES: tuple[str, ...] = ("crm_accounts", "crm_contacts", "crm_opportunities", "crm_users", "crm_stages")
