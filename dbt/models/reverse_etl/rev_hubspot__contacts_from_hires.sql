-- Cross-provider: every candidate an ATS hired becomes a contact in the HubSpot portal of the same tenant,
-- matched by email (HubSpot's own upsert by the unique `email` property: a contact that already exists is
-- updated, not duplicated), with the title of the job they were hired for (macro: dbt/macros/reverse_etl.sql).
{{ hires_as_crm_people('hubspot') }}
