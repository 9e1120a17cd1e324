-- Cross-provider: every candidate an ATS hired becomes a person in the Pipedrive company of the same tenant,
-- matched by email (searched with /api/v2/persons/search before writing: Pipedrive has no upsert).
{{ hires_as_crm_people('pipedrive') }}
