-- Desired state of Pipedrive persons: the canonical lead score in a person custom field. Pipedrive names
-- custom fields by a 40-character key (var `pipedrive_lead_score_field`); columns that are not standard
-- person fields are written into the person's `custom_fields` by that key.
select
    contact_id as record_key,
    connection_id,
    remote_id as external_id,
    lead_score as "{{ var('pipedrive_lead_score_field', 'c4a1e5c07e5c0e5c0e5c0e5c0e5c0e5c0e5c0e51') }}"
from {{ ref('int_crm__contact_lead_scores') }}
where provider = 'pipedrive'
