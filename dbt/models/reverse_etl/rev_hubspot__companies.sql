-- Desired state of HubSpot companies: name, domain, employee count, owner, and the best lead score of the
-- company's contacts (custom property canonry_lead_score), from the canonical accounts.
with scores as (
    select c.account_id, max(s.lead_score) as best_score
    from {{ ref('int_crm__contact_lead_scores') }} as s
    inner join {{ ref('crm_contacts') }} as c on c.contact_id = s.contact_id
    group by c.account_id
)

select
    a.account_id as record_key,
    a.connection_id,
    a.remote_id as external_id,
    a.name,
    a.website as domain,
    a.number_of_employees,
    u.remote_id as owner_remote_id,
    coalesce(scores.best_score, 0) as best_lead_score
from {{ ref('crm_accounts') }} as a
left join {{ ref('crm_users') }} as u on u.user_id = a.owner_user_id
left join scores on scores.account_id = a.account_id
where a.provider = 'hubspot' and not a.is_deleted
