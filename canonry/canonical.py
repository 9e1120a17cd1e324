"""The canonical schema, as data (shared/reference/canonical-model.md): our public contract.

dbt marts, the GE suites, the connections-file checks and the SQL guard all read it from here.
"""

from __future__ import annotations

STANDARD_COLUMNS: tuple[str, ...] = (
    "provider", "connection_id", "tenant_id", "remote_id", "remote_created_at", "remote_updated_at",
    "is_deleted", "deleted_at", "last_synced_at", "custom_fields", "_load_id",
)

ATS_TABLES: dict[str, tuple[str, ...]] = {
    "ats_candidates": ("first_name", "last_name", "company", "title", "is_private", "can_email",
                       "last_interaction_at", "emails", "phones", "urls", "locations", "tags"),
    "ats_applications": ("candidate_id", "job_id", "applied_at", "rejected_at", "current_stage_id", "reject_reason",
                         "source", "credited_to_user_id", "status"),
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
    "crm_opportunities": ("name", "description", "amount", "currency", "account_id", "owner_user_id", "stage_id",
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


# The value kind of every contract column, as the warehouse holds it and the read API serves it (its
# OpenAPI document is generated from these). A column name means one thing in every table: named
# exceptions first, then the naming rules below.
COLUMN_KINDS: dict[str, str] = {
    "amount": "decimal", "number_of_employees": "integer", "stage_order": "integer",
    "close_date": "date", "start_date": "date", "due_date": "timestamp",
    "can_email": "boolean", "confidential": "boolean",
    "emails": "json_list", "phones": "json_list", "urls": "json_list", "locations": "json_list",
    "tags": "json_list", "addresses": "json_list", "custom_fields": "json_object",
    "_load_id": "string",
}
KIND_BY_SUFFIX: tuple[tuple[str, str], ...] = (("_ids", "json_list"), ("_id", "string"), ("_at", "timestamp"))
KIND_BY_PREFIX: tuple[tuple[str, str], ...] = (("is_", "boolean"),)


def column_kind(column: str) -> str:
    """string, integer, decimal, boolean, date, timestamp, json_list or json_object."""
    if column in COLUMN_KINDS:
        return COLUMN_KINDS[column]
    for prefix, kind in KIND_BY_PREFIX:
        if column.startswith(prefix):
            return kind
    for suffix, kind in KIND_BY_SUFFIX:
        if column.endswith(suffix):
            return kind
    return "string"


# Columns every row has a value in (the others may be null).
REQUIRED_COLUMNS: tuple[str, ...] = ("provider", "connection_id", "tenant_id", "remote_id", "is_deleted")
