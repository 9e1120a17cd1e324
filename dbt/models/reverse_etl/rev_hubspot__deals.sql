-- Desired state of HubSpot deals: name, amount, close date, owner, from the canonical opportunities.
select
    o.opportunity_id as record_key,
    o.connection_id,
    o.remote_id as external_id,
    o.name,
    o.amount,
    o.close_date,
    u.remote_id as owner_remote_id
from {{ ref('crm_opportunities') }} as o
left join {{ ref('crm_users') }} as u on u.user_id = o.owner_user_id
where o.provider = 'hubspot' and not o.is_deleted
