-- Desired state of Salesforce Contacts: the canonical lead score in the custom field Canonry_Lead_Score__c.
-- record_key: the canonical contact id; external_id: the Contact's Salesforce Id (remote_id).
select
    contact_id as record_key,
    connection_id,
    remote_id as external_id,
    lead_score as Canonry_Lead_Score__c
from {{ ref('int_crm__contact_lead_scores') }}
where provider = 'salesforce'
