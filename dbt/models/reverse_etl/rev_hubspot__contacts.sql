-- Desired state of HubSpot contacts: the canonical lead score in the custom property canonry_lead_score.
-- record_key: the canonical contact id; external_id: the contact's id in that HubSpot portal (remote_id).
select
    contact_id as record_key,
    connection_id,
    remote_id as external_id,
    lead_score as canonry_lead_score
from {{ ref('int_crm__contact_lead_scores') }}
where provider = 'hubspot'
