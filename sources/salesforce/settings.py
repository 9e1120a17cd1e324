"""Salesforce REST API: what we read, declared as data (API notes: sources/salesforce/README.md).

Every object is read with SOQL built from its declared field list, ordered by `SystemModstamp` (the
replication cursor every standard object has), 2,000 records per batch. Fields marked optional are
dropped when the org's describe does not have them (`CurrencyIsoCode` exists only in multi-currency orgs).
"""

from __future__ import annotations

from dataclasses import dataclass

from canonry.providers import OAuthSpec, ProbeSpec, ProviderObject, ProviderSpec, RateLimit, WebhookSpec

API_VERSION = "62.0"
BATCH_SIZE = 2000              # the query batch maximum (Sforce-Query-Options: batchSize)
CURSOR_FIELD = "SystemModstamp"
SETTLE_SECONDS = 5             # never advance the cursor past now - this (commit order vs. modstamp)
DESCRIBE_TTL_HOURS = 24        # describe each object at most once a day (cached in resource state)
DELETED_WINDOW_DAYS = 15       # getDeleted serves this far back; older gaps need a full key scan

SYSTEM_FIELDS = ("Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
                 "SystemModstamp")


@dataclass(frozen=True)
class SObject:
    name: str                           # the sObject API name
    resource: str                       # raw table in raw_salesforce
    fields: tuple[str, ...]             # besides SYSTEM_FIELDS
    optional: tuple[str, ...] = ()      # dropped when the org's describe lacks them
    deletes: bool = True                # replicate deletes with getDeleted (and key scans)

    def select(self, available: set[str] | None = None) -> list[str]:
        wanted = [*SYSTEM_FIELDS, *self.fields]
        if available is None:
            return wanted
        return [f for f in wanted if f in available or f not in self.optional]


SOBJECTS: dict[str, SObject] = {s.resource: s for s in (
    SObject("User", "users", ("Username", "Name", "FirstName", "LastName", "Email", "Title", "IsActive")),
    SObject("OpportunityStage", "opportunity_stages", (
        "ApiName", "MasterLabel", "IsActive", "IsClosed", "IsWon", "SortOrder", "DefaultProbability",
        "ForecastCategoryName", "Description"), deletes=False),
    SObject("Account", "accounts", (
        "OwnerId", "Name", "Type", "Industry", "Website", "Phone", "NumberOfEmployees", "AnnualRevenue",
        "Description", "ParentId", "BillingStreet", "BillingCity", "BillingState", "BillingPostalCode",
        "BillingCountry", "ShippingStreet", "ShippingCity", "ShippingState", "ShippingPostalCode",
        "ShippingCountry", "CurrencyIsoCode", "LastActivityDate"), optional=("CurrencyIsoCode",)),
    SObject("Contact", "contacts", (
        "OwnerId", "FirstName", "LastName", "Name", "Email", "Phone", "MobilePhone", "Title", "AccountId",
        "MailingStreet", "MailingCity", "MailingState", "MailingPostalCode", "MailingCountry", "LeadSource",
        "LastActivityDate")),
    SObject("Lead", "leads", (
        "OwnerId", "FirstName", "LastName", "Name", "Company", "Title", "Email", "Phone", "Status", "LeadSource",
        "IsConverted", "ConvertedDate", "ConvertedAccountId", "ConvertedContactId", "ConvertedOpportunityId",
        "Street", "City", "State", "PostalCode", "Country")),
    SObject("Opportunity", "opportunities", (
        "OwnerId", "Name", "AccountId", "ContactId", "Amount", "CurrencyIsoCode", "CloseDate", "StageName",
        "Probability", "IsClosed", "IsWon", "ForecastCategoryName", "Type", "LeadSource", "NextStep",
        "Description", "LastActivityDate"), optional=("CurrencyIsoCode", "ContactId")),
    SObject("Task", "tasks", (
        "OwnerId", "Subject", "Status", "Priority", "ActivityDate", "WhoId", "WhatId", "AccountId", "IsClosed",
        "Description", "TaskSubtype", "CallType", "CompletedDateTime"),
        optional=("TaskSubtype", "CallType", "CompletedDateTime")),
    SObject("Event", "events", (
        "OwnerId", "Subject", "StartDateTime", "EndDateTime", "ActivityDateTime", "DurationInMinutes", "WhoId",
        "WhatId", "AccountId", "Location", "Description")),
    SObject("Note", "notes", ("OwnerId", "Title", "Body", "ParentId", "IsPrivate")),
)}

# Custom fields (`__c`, `custom: true` in describe) of the objects canonical `custom_fields` are named for.
# Opt-in object `custom_fields`: only connections that list it in `objects` describe these objects every
# run (once per object, shared with the object's own read, which then selects the custom fields too) and
# write the custom field definitions to raw_salesforce.custom_fields when new or changed.
CUSTOM_FIELD_SOBJECTS: tuple[str, ...] = ("Account", "Contact", "Opportunity")
CUSTOM_FIELD_KEYS = ("label", "type", "picklistValues", "referenceTo", "length", "precision", "scale")
OPT_IN_OBJECTS: tuple[str, ...] = ("custom_fields",)

OBJECTS: tuple[str, ...] = (*SOBJECTS, *OPT_IN_OBJECTS)
PRIMARY_KEY = "remote_id"

READ_SCOPES: dict[str, str] = {name: "api" for name in OBJECTS}
WRITE_SCOPES: dict[str, str] = {name: "api" for name in ("accounts", "contacts", "leads", "opportunities", "tasks",
                                                          "events", "notes")}
OAUTH_SCOPES: tuple[str, ...] = ("api", "refresh_token")
AUTH_KINDS: tuple[str, ...] = ("oauth2",)
DEFAULT_BASE_URL = "https://login.salesforce.com"   # the login host; API calls go to the token's instance_url
AUTHORIZE_PATH = "/services/oauth2/authorize"
TOKEN_PATH = "/services/oauth2/token"
REVOKE_PATH = "/services/oauth2/revoke"

CANONICAL_TABLES: tuple[str, ...] = ("crm_accounts", "crm_contacts", "crm_leads", "crm_opportunities", "crm_stages",
                                     "crm_users", "crm_notes", "crm_tasks", "crm_engagements")

# Raw payload fields that carry personal data, per raw table (read by canonry/governance/dsar.py: an
# erased person's own records have these replaced at any depth; every other field is scrubbed of their
# identifiers). Data, not code: a new personal field of the provider is one more name here.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "contacts": ("FirstName", "LastName", "Name", "Email", "Phone", "MobilePhone", "Title", "MailingStreet",
                 "MailingCity", "MailingPostalCode"),
    "leads": ("FirstName", "LastName", "Name", "Email", "Phone", "Title", "Street", "City", "PostalCode"),
    "users": ("FirstName", "LastName", "Name", "Email", "Username"),
}

# What each object's records become: rows of these canonical tables (not every mart its raw table is joined
# into). `canonry validate` refuses an `objects:` list that leaves out the feeder of a table a listed
# object's rows reference (canonical.FOREIGN_KEYS: dbt's relationships tests would fail).
FEEDS: dict[str, tuple[str, ...]] = {
    "users": ("crm_users",), "opportunity_stages": ("crm_stages",), "accounts": ("crm_accounts",),
    "contacts": ("crm_contacts",), "leads": ("crm_leads",), "opportunities": ("crm_opportunities",),
    "tasks": ("crm_tasks", "crm_engagements"),   # a task is also an engagement (calls, emails logged as tasks)
    "events": ("crm_engagements",), "notes": ("crm_notes",),
}

SPEC = ProviderSpec(
    slug="salesforce", family="crm", title="Salesforce REST API",
    auth_kinds=AUTH_KINDS, base_url=DEFAULT_BASE_URL, rate_limit=RateLimit(25, 1.0),
    objects=(*(ProviderObject(name, cursor=CURSOR_FIELD, page_size=BATCH_SIZE, feeds=FEEDS[name]) for name in SOBJECTS),
             *(ProviderObject(name) for name in OPT_IN_OBJECTS)),
    opt_in_objects=OPT_IN_OBJECTS,
    deletes="get_deleted", canonical_tables=CANONICAL_TABLES, resumable=tuple(SOBJECTS),
    read_scopes=READ_SCOPES, write_scopes=WRITE_SCOPES,
    oauth=OAuthSpec(authorize_path=AUTHORIZE_PATH, token_path=TOKEN_PATH, revoke_path=REVOKE_PATH,
                    base_scopes=OAUTH_SCOPES),
    webhook=WebhookSpec("outbound messages (SOAP), checked by organization id", settings=("organization_id",),
                        ui_step="Salesforce has no HTTP webhook to register: create an Outbound Message (Setup > "
                                "Process Automation > Outbound Messages) with Endpoint URL {url}, sent by a flow on "
                                "the objects synced"),
    write_back=("contacts", "accounts", "opportunities", "leads"),
    personal_fields=PERSONAL_FIELDS,
    # The canary's probe: /limits is authenticated, tiny, and not counted against the daily API allocation.
    probe=ProbeSpec("GET", "/limits"),
)
