"""The canonical schema, as data (docs/ARCHITECTURE.md, contract 2): our public contract.

dbt marts, the GE suites, the connections-file checks and the SQL guard all read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

STANDARD_COLUMNS: tuple[str, ...] = (
    "provider", "connection_id", "tenant_id", "remote_id", "remote_created_at", "remote_updated_at",
    "is_deleted", "deleted_at", "last_synced_at", "custom_fields", "_load_id",
)

ATS_TABLES: dict[str, tuple[str, ...]] = {
    "ats_candidates": ("first_name", "last_name", "company", "title", "is_private", "can_email",
                       "last_interaction_at", "emails", "phones", "urls", "locations", "tags"),
    "ats_applications": ("candidate_id", "job_id", "applied_at", "rejected_at", "hired_at", "current_stage_id",
                         "reject_reason", "source", "credited_to_user_id", "status"),
    "ats_jobs": ("name", "code", "description", "status", "type", "confidential", "department_ids", "office_ids",
                 "hiring_manager_ids", "recruiter_ids"),
    "ats_job_stages": ("job_id", "name", "stage_order"),
    "ats_interviews": ("application_id", "job_stage_id", "organizer_user_id", "interviewer_user_ids", "location",
                       "start_at", "end_at", "status"),
    "ats_offers": ("application_id", "creator_user_id", "sent_at", "closed_at", "start_date", "status"),
    "ats_departments": ("name", "parent_department_id"),
    "ats_offices": ("name", "location"),
    "ats_users": ("first_name", "last_name", "email", "is_disabled", "access_role"),
}

CRM_TABLES: dict[str, tuple[str, ...]] = {
    "crm_accounts": ("name", "description", "industry", "website", "number_of_employees", "owner_user_id",
                     "addresses", "phones", "last_activity_at"),
    "crm_contacts": ("first_name", "last_name", "account_id", "owner_user_id", "emails", "phones", "addresses",
                     "last_activity_at"),
    "crm_leads": ("first_name", "last_name", "title", "company", "lead_source", "owner_user_id", "emails", "phones",
                  "addresses", "status", "converted_at", "converted_contact_id", "converted_account_id"),
    "crm_opportunities": ("name", "description", "amount", "currency", "amount_reporting", "reporting_currency",
                          "account_id", "owner_user_id", "stage_id",
                          "status", "close_date", "last_activity_at"),
    "crm_stages": ("pipeline", "name", "stage_order", "is_closed", "is_won"),
    "crm_users": ("name", "email", "is_active"),
    "crm_notes": ("content", "owner_user_id", "contact_id", "account_id", "opportunity_id"),
    "crm_tasks": ("subject", "content", "owner_user_id", "account_id", "contact_id", "opportunity_id", "due_date",
                  "completed_at", "status"),
    "crm_engagements": ("type", "direction", "subject", "content", "owner_user_id", "account_id", "contact_ids",
                        "start_at", "end_at"),
}

TABLES: dict[str, tuple[str, ...]] = {**ATS_TABLES, **CRM_TABLES}

ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("ats_applications", "status"): ("ACTIVE", "REJECTED", "HIRED", "CONVERTED", "OTHER"),
    ("ats_jobs", "status"): ("OPEN", "CLOSED", "DRAFT", "ARCHIVED", "PENDING", "OTHER"),
    ("ats_jobs", "type"): ("POSTING", "REQUISITION", "PROFILE", "OTHER"),
    ("ats_interviews", "status"): ("SCHEDULED", "AWAITING_FEEDBACK", "COMPLETE", "OTHER"),
    ("ats_offers", "status"): ("DRAFT", "APPROVAL-SENT", "APPROVED", "SENT", "SENT-MANUALLY", "OPENED", "DENIED",
                               "SIGNED", "DEPRECATED", "OTHER"),
    ("ats_users", "access_role"): ("SUPER_ADMIN", "ADMIN", "TEAM_MEMBER", "LIMITED_TEAM_MEMBER", "INTERVIEWER",
                                   "OTHER"),
    ("crm_leads", "status"): ("OPEN", "CLOSED", "UNQUALIFIED", "QUALIFIED", "OTHER"),
    ("crm_opportunities", "status"): ("OPEN", "WON", "LOST"),
    ("crm_tasks", "status"): ("OPEN", "CLOSED"),
    ("crm_engagements", "type"): ("CALL", "MEETING", "EMAIL"),
    ("crm_engagements", "direction"): ("INBOUND", "OUTBOUND"),
}


def id_column(table: str) -> str:
    """`crm_opportunities` -> `opportunity_id`, `ats_job_stages` -> `job_stage_id`."""
    entity = table.split("_", 1)[1]
    singular = {"opportunities": "opportunity", "addresses": "address"}.get(entity, entity[:-1])
    return f"{singular}_id"


def columns(table: str) -> tuple[str, ...]:
    """Every column of a canonical table, in contract order."""
    return (id_column(table), *TABLES[table], *STANDARD_COLUMNS)


def canonical_fields() -> set[str]:
    """`table.column` for every canonical column (what write-back field mappings may name)."""
    return {f"{table}.{column}" for table in TABLES for column in columns(table)}


# --- Column documentation: type, classification, description (rendered into dbt by canonry/dbt_yml.py) ---

# Data classes, most to least restricted: `sensitive_pii` (compensation, hiring decisions, free-form ATS
# fields that carry demographics: nulled for analysts), `pii` (identifies a person: name, email, phone, free
# text about them), `internal` (business data and ids), `public` (what the company publishes itself).
CLASSIFICATIONS: tuple[str, ...] = ("public", "internal", "pii", "sensitive_pii")

# Who answers for a table's data (its questions, its access requests), by table family.
OWNERS: dict[str, str] = {"ats": "talent-acquisition", "crm": "revenue-operations"}

# Logical column types -> the warehouse's type, per dbt adapter. A model's contract is these.
WAREHOUSE_TYPES: dict[str, dict[str, str]] = {
    "text": {"duckdb": "varchar", "postgres": "text"},
    "timestamp": {"duckdb": "timestamp with time zone", "postgres": "timestamp with time zone"},
    "date": {"duckdb": "date", "postgres": "date"},
    "boolean": {"duckdb": "boolean", "postgres": "boolean"},
    "integer": {"duckdb": "integer", "postgres": "integer"},
    "bigint": {"duckdb": "bigint", "postgres": "bigint"},
    "money": {"duckdb": "decimal(18,2)", "postgres": "numeric(18,2)"},
    "json": {"duckdb": "json", "postgres": "jsonb"},
}

# (type, class, description) of a column by name, whatever the table; TABLE_COLUMN_DOCS overrides per table.
COLUMN_DOCS: dict[str, tuple[str, str, str]] = {
    # Standard columns (every canonical row).
    "provider": ("text", "internal", "Provider slug the row came from (greenhouse, lever, ashby, hubspot, salesforce, "
                 "pipedrive)."),
    "connection_id": ("text", "internal", "Id of the connection (connections file) the row was synced through."),
    "tenant_id": ("text", "internal", "Tenant the connection belongs to."),
    "remote_id": ("text", "internal", "The record's id in the provider."),
    "remote_created_at": ("timestamp", "internal", "When the provider created the record."),
    "remote_updated_at": ("timestamp", "internal", "When the provider last changed the record."),
    "is_deleted": ("boolean", "internal", "True when the provider deleted (or archived) the record; the row is kept."),
    "deleted_at": ("timestamp", "internal", "When Canonry learned the record was deleted; null while it exists."),
    "last_synced_at": ("timestamp", "internal", "When the version of the record in this row was extracted."),
    "custom_fields": ("json", "pii", "The provider's custom fields of the record, as a JSON object (name -> value)."),
    "_load_id": ("text", "internal", "dlt load id of the raw version this row was built from (lineage)."),
    # People.
    "first_name": ("text", "pii", "Given name."),
    "last_name": ("text", "pii", "Family name."),
    "name": ("text", "internal", "Display name."),
    "email": ("text", "pii", "Primary email address."),
    "emails": ("json", "pii", "Email addresses: JSON array of {value, type}."),
    "phones": ("json", "pii", "Phone numbers: JSON array of {value, type}."),
    "addresses": ("json", "pii", "Postal addresses: JSON array of objects (street, city, state, postal_code, "
                  "country, type)."),
    "title": ("text", "pii", "Job title."),
    "company": ("text", "pii", "Company the person works for (free text)."),
    # Ownership and links.
    "owner_user_id": ("text", "internal", "Canonical id of the owning user (crm_users.user_id)."),
    "account_id": ("text", "internal", "Canonical id of the account (crm_accounts.account_id)."),
    "contact_id": ("text", "internal", "Canonical id of the contact (crm_contacts.contact_id)."),
    "opportunity_id": ("text", "internal", "Canonical id of the opportunity (crm_opportunities.opportunity_id)."),
    "application_id": ("text", "internal", "Canonical id of the application (ats_applications.application_id)."),
    "candidate_id": ("text", "internal", "Canonical id of the candidate (ats_candidates.candidate_id)."),
    "job_id": ("text", "internal", "Canonical id of the job (ats_jobs.job_id)."),
    "job_stage_id": ("text", "internal", "Canonical id of the job stage (ats_job_stages.job_stage_id)."),
    "stage_order": ("integer", "internal", "Position of the stage in its job or pipeline (0 or 1 first, by provider)."),
    "status": ("text", "internal", "Canonical status (one of the contract's enum values; OTHER when unmapped)."),
    "description": ("text", "internal", "Free-text description."),
    "content": ("text", "pii", "Body text; may mention people."),
    "subject": ("text", "pii", "Subject line; may mention people."),
    "location": ("text", "internal", "Location as free text."),
    "last_activity_at": ("timestamp", "internal", "Last activity (call, email, meeting, note) the provider recorded."),
}

TABLE_COLUMN_DOCS: dict[str, tuple[str, str, str]] = {
    # ATS.
    "ats_candidates.company": ("text", "pii", "Candidate's current company."),
    "ats_candidates.title": ("text", "pii", "Candidate's current job title."),
    "ats_candidates.is_private": ("boolean", "internal", "True when the provider restricts the candidate to "
                                  "privileged users."),
    "ats_candidates.can_email": ("boolean", "internal", "Whether the candidate may be emailed (consent)."),
    "ats_candidates.last_interaction_at": ("timestamp", "internal", "Last activity on the candidate in the ATS."),
    "ats_candidates.urls": ("json", "pii", "Web links (LinkedIn, portfolio…): JSON array of {value, type}."),
    "ats_candidates.locations": ("json", "pii", "Where the candidate lives: JSON array of text."),
    "ats_candidates.tags": ("json", "internal", "Recruiters' tags: JSON array of text."),
    "ats_candidates.custom_fields": ("json", "sensitive_pii", "Custom candidate fields (often EEO/demographic "
                                     "answers, salary expectations), JSON object."),
    "ats_applications.applied_at": ("timestamp", "internal", "When the candidate applied (or was added)."),
    "ats_applications.rejected_at": ("timestamp", "internal", "When the application was rejected; null otherwise."),
    "ats_applications.hired_at": ("timestamp", "internal", "When the application was hired; null otherwise. The "
                                  "provider's hire decision: Lever's archive time with a hired reason; for "
                                  "Greenhouse and Ashby (no hire time on the application) the accepted offer's "
                                  "decision, else the application's last change."),
    "ats_applications.current_stage_id": ("text", "internal", "Canonical id of the application's current stage "
                                          "(ats_job_stages.job_stage_id)."),
    "ats_applications.reject_reason": ("text", "sensitive_pii", "Why the candidate was rejected (a hiring "
                                       "decision about a person)."),
    "ats_applications.source": ("text", "internal", "Where the application came from (job board, referral…)."),
    "ats_applications.credited_to_user_id": ("text", "internal", "Canonical id of the user credited with the "
                                             "application (ats_users.user_id)."),
    "ats_applications.status": ("text", "internal", "ACTIVE, REJECTED, HIRED, CONVERTED or OTHER."),
    "ats_applications.custom_fields": ("json", "sensitive_pii", "Custom application fields (screening answers, "
                                       "demographics), JSON object."),
    "ats_jobs.name": ("text", "public", "Job title as posted."),
    "ats_jobs.code": ("text", "internal", "Requisition code."),
    "ats_jobs.description": ("text", "public", "Job description."),
    "ats_jobs.status": ("text", "internal", "OPEN, CLOSED, DRAFT, ARCHIVED, PENDING or OTHER."),
    "ats_jobs.type": ("text", "internal", "POSTING, REQUISITION, PROFILE or OTHER."),
    "ats_jobs.confidential": ("boolean", "internal", "True for a confidential requisition."),
    "ats_jobs.department_ids": ("json", "internal", "Canonical department ids of the job: JSON array "
                                "(ats_departments.department_id)."),
    "ats_jobs.office_ids": ("json", "internal", "Canonical office ids of the job: JSON array (ats_offices.office_id)."),
    "ats_jobs.hiring_manager_ids": ("json", "internal", "Canonical user ids of the hiring managers: JSON array."),
    "ats_jobs.recruiter_ids": ("json", "internal", "Canonical user ids of the recruiters: JSON array."),
    "ats_job_stages.name": ("text", "internal", "Stage name (Application Review, Onsite, Offer…)."),
    "ats_interviews.organizer_user_id": ("text", "internal", "Canonical id of the organising user (ats_users)."),
    "ats_interviews.interviewer_user_ids": ("json", "internal", "Canonical ids of the interviewers: JSON array."),
    "ats_interviews.location": ("text", "internal", "Where the interview takes place (room, video link)."),
    "ats_interviews.start_at": ("timestamp", "internal", "Interview start."),
    "ats_interviews.end_at": ("timestamp", "internal", "Interview end."),
    "ats_interviews.status": ("text", "internal", "SCHEDULED, AWAITING_FEEDBACK, COMPLETE or OTHER."),
    "ats_offers.creator_user_id": ("text", "internal", "Canonical id of the user who created the offer."),
    "ats_offers.sent_at": ("timestamp", "internal", "When the offer was sent."),
    "ats_offers.closed_at": ("timestamp", "internal", "When the offer was accepted, declined or withdrawn."),
    "ats_offers.start_date": ("date", "internal", "Agreed start date."),
    "ats_offers.status": ("text", "internal", "The offer's status (contract enum; SIGNED when accepted)."),
    "ats_offers.custom_fields": ("json", "sensitive_pii", "Custom offer fields (salary, bonus, equity), JSON object."),
    "ats_departments.name": ("text", "public", "Department name."),
    "ats_departments.parent_department_id": ("text", "internal", "Canonical id of the parent department; null at "
                                             "the top of the hierarchy."),
    "ats_offices.name": ("text", "public", "Office name."),
    "ats_offices.location": ("text", "public", "Office location as free text."),
    "ats_users.email": ("text", "pii", "The user's work email."),
    "ats_users.is_disabled": ("boolean", "internal", "True when the user can no longer sign in."),
    "ats_users.access_role": ("text", "internal", "SUPER_ADMIN, ADMIN, TEAM_MEMBER, LIMITED_TEAM_MEMBER, "
                              "INTERVIEWER or OTHER."),
    # CRM.
    "crm_accounts.name": ("text", "internal", "Company (account) name."),
    "crm_accounts.industry": ("text", "internal", "Industry."),
    "crm_accounts.website": ("text", "public", "The company's website."),
    "crm_accounts.number_of_employees": ("bigint", "internal", "Number of employees."),
    "crm_accounts.addresses": ("json", "internal", "Company addresses: JSON array of objects."),
    "crm_accounts.phones": ("json", "internal", "Company phone numbers: JSON array of {value, type}."),
    "crm_leads.lead_source": ("text", "internal", "Where the lead came from."),
    "crm_leads.status": ("text", "internal", "OPEN, CLOSED, UNQUALIFIED, QUALIFIED or OTHER."),
    "crm_leads.converted_at": ("timestamp", "internal", "When the lead was converted; null otherwise."),
    "crm_leads.converted_contact_id": ("text", "internal", "Canonical id of the contact it became."),
    "crm_leads.converted_account_id": ("text", "internal", "Canonical id of the account it became."),
    "crm_opportunities.name": ("text", "internal", "Deal name."),
    "crm_opportunities.amount": ("money", "internal", "Deal amount in `currency` (not converted: sum "
                                 "`amount_reporting` across currencies)."),
    "crm_opportunities.currency": ("text", "internal", "ISO 4217 code of the amount."),
    "crm_opportunities.amount_reporting": ("money", "internal", "`amount` converted to `reporting_currency` "
                                           "(exact decimal, rounded to cents) with the rates of the seed "
                                           "reporting_currency_rates (replaceable); null when the seed has no "
                                           "rate for `currency` (dbt warns: reporting_currency_rates_missing). "
                                           "Sum this, not `amount`, across currencies."),
    "crm_opportunities.reporting_currency": ("text", "internal", "ISO 4217 code of `amount_reporting`: the dbt "
                                             "var reporting_currency of the build (default USD)."),
    "crm_opportunities.stage_id": ("text", "internal", "Canonical id of the deal's stage (crm_stages.stage_id)."),
    "crm_opportunities.status": ("text", "internal", "OPEN, WON or LOST."),
    "crm_opportunities.close_date": ("date", "internal", "Expected or actual close date."),
    "crm_stages.pipeline": ("text", "internal", "Pipeline the stage belongs to."),
    "crm_stages.name": ("text", "internal", "Stage name."),
    "crm_stages.is_closed": ("boolean", "internal", "True for a closing stage (won or lost); null when the "
                             "provider's stages carry no outcome (Pipedrive: won/lost is the deal's status)."),
    "crm_stages.is_won": ("boolean", "internal", "True for a won stage; null when the provider's stages carry no "
                          "outcome (Pipedrive: read crm_opportunities.status)."),
    "crm_users.name": ("text", "pii", "The user's full name."),
    "crm_users.email": ("text", "pii", "The user's work email."),
    "crm_users.is_active": ("boolean", "internal", "False when the user is deactivated."),
    "crm_tasks.due_date": ("date", "internal", "The day the task is due."),
    "crm_tasks.completed_at": ("timestamp", "internal", "When the task was completed; null while open."),
    "crm_tasks.status": ("text", "internal", "OPEN or CLOSED."),
    "crm_engagements.type": ("text", "internal", "CALL, MEETING or EMAIL."),
    "crm_engagements.direction": ("text", "internal", "INBOUND or OUTBOUND."),
    "crm_engagements.contact_ids": ("json", "internal", "Canonical ids of the contacts involved: JSON array."),
    "crm_engagements.start_at": ("timestamp", "internal", "Start of the call or meeting; sending time of an email."),
    "crm_engagements.end_at": ("timestamp", "internal", "End of the call or meeting."),
}

TABLE_DESCRIPTIONS: dict[str, str] = {
    "ats_candidates": "People who applied or were sourced, one row per candidate per connection.",
    "ats_applications": "A candidate's application to a job, with its current stage and outcome.",
    "ats_jobs": "Jobs (requisitions and postings) with their departments, offices and hiring team.",
    "ats_job_stages": "The interview stages of each job, in order.",
    "ats_interviews": "Scheduled interviews of applications.",
    "ats_offers": "Offers made on applications.",
    "ats_departments": "Departments, with their parent (the hierarchy is explicit: count by one level).",
    "ats_offices": "Offices.",
    "ats_users": "Users of the ATS (recruiters, interviewers, hiring managers).",
    "crm_accounts": "Companies (accounts, organisations).",
    "crm_contacts": "People at accounts.",
    "crm_leads": "Prospects not yet qualified into contacts (Salesforce leads; none for HubSpot or Pipedrive).",
    "crm_opportunities": "Deals, with amount, stage and outcome.",
    "crm_stages": "Deal pipeline stages.",
    "crm_users": "Users of the CRM (owners).",
    "crm_notes": "Notes on contacts, accounts and deals.",
    "crm_tasks": "Tasks (to-dos) on contacts, accounts and deals.",
    "crm_engagements": "Calls, meetings and emails.",
}

# Foreign keys (table.column -> referenced table; the referenced column is its id column). Tested by dbt.
FOREIGN_KEYS: dict[str, str] = {
    "ats_applications.candidate_id": "ats_candidates",
    "ats_applications.job_id": "ats_jobs",
    "ats_interviews.application_id": "ats_applications",
    "ats_offers.application_id": "ats_applications",
    "crm_accounts.owner_user_id": "crm_users",
    "crm_contacts.account_id": "crm_accounts",
    "crm_contacts.owner_user_id": "crm_users",
    "crm_leads.owner_user_id": "crm_users",
    "crm_opportunities.account_id": "crm_accounts",
    "crm_opportunities.stage_id": "crm_stages",
    "crm_opportunities.owner_user_id": "crm_users",
    "crm_notes.contact_id": "crm_contacts",
    "crm_notes.account_id": "crm_accounts",
    "crm_notes.opportunity_id": "crm_opportunities",
    "crm_tasks.contact_id": "crm_contacts",
    "crm_tasks.account_id": "crm_accounts",
    "crm_tasks.opportunity_id": "crm_opportunities",
    "crm_engagements.account_id": "crm_accounts",
    "crm_engagements.owner_user_id": "crm_users",
}


@dataclass(frozen=True)
class ColumnDoc:
    name: str
    type: str
    classification: str
    description: str
    owner: str


def column_doc(table: str, column: str) -> ColumnDoc:
    """A canonical column's type, class, description and owner. KeyError names a column nobody documented."""
    owner = OWNERS[table.split("_", 1)[0]]
    if column == id_column(table):
        entity = table.split("_", 1)[1].replace("_", " ")
        return ColumnDoc(column, "text", "internal",
                         f"Canonical id of the {entity[:-1] if entity.endswith('s') else entity} row: md5 of "
                         "connection_id ':' remote_id (stable across syncs).", owner)
    spec = TABLE_COLUMN_DOCS.get(f"{table}.{column}") or COLUMN_DOCS.get(column)
    if spec is None:
        raise KeyError(f"canonical column {table}.{column} has no type/class/description in canonry/canonical.py "
                       "(add it to COLUMN_DOCS or TABLE_COLUMN_DOCS)")
    kind, classification, description = spec
    if classification not in CLASSIFICATIONS:
        raise KeyError(f"canonical column {table}.{column} has class {classification!r}, not one of "
                       f"{', '.join(CLASSIFICATIONS)} (canonry/canonical.py)")
    values = ENUMS.get((table, column))
    if values and not any(v in description for v in values):
        description = f"{description} One of: {', '.join(values)}."
    return ColumnDoc(column, kind, classification, description, owner)


def warehouse_type(kind: str, adapter: str = "duckdb") -> str:
    return WAREHOUSE_TYPES[kind][adapter]


# The read API's value kinds (its OpenAPI document is generated from them), derived from the contract's
# column types above: one contract, two renderings (dbt's data types, the API's JSON schema).
API_KINDS: dict[str, str] = {"text": "string", "integer": "integer", "bigint": "integer", "money": "decimal",
                             "boolean": "boolean", "date": "date", "timestamp": "timestamp"}
JSON_OBJECT_COLUMNS: tuple[str, ...] = ("custom_fields",)

# Columns every row has a value in (the others may be null).
REQUIRED_COLUMNS: tuple[str, ...] = ("provider", "connection_id", "tenant_id", "remote_id", "is_deleted")


def column_kind(table: str, column: str) -> str:
    """string, integer, decimal, boolean, date, timestamp, json_list or json_object."""
    kind = column_doc(table, column).type
    if kind == "json":
        return "json_object" if column in JSON_OBJECT_COLUMNS else "json_list"
    return API_KINDS[kind]
