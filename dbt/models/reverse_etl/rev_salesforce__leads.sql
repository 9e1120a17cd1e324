-- Desired state of Salesforce Leads: name, company, title, lead source, owner, from the canonical leads.
select
    l.lead_id as record_key,
    l.connection_id,
    l.remote_id as external_id,
    l.first_name,
    l.last_name,
    l.company,
    l.title,
    u.remote_id as owner_remote_id
from {{ ref('crm_leads') }} as l
left join {{ ref('crm_users') }} as u on u.user_id = l.owner_user_id
where l.provider = 'salesforce' and not l.is_deleted and l.converted_at is null
