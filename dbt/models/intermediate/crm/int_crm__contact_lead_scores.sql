-- A deterministic lead score per canonical contact, from canonical activity counts (the reverse-ETL
-- example: enrich each CRM's contacts with a score computed across the canonical model).
--   10 per engagement (call, meeting, email) the contact took part in, 5 per task, 3 per note,
--   +20 with an email address, +10 with a phone number, +10 when linked to an account; capped at 100.
with contacts as (
    select contact_id, provider, connection_id, tenant_id, remote_id, account_id, emails, phones
    from {{ ref('crm_contacts') }}
    where not is_deleted
),
engagements as (
    select participant as contact_id, count(*) as n
    from {{ ref('crm_engagements') }} e,
         {{ json_strings("coalesce(e.contact_ids, '[]')") }} as t(participant)
    where not e.is_deleted
    group by 1
),
tasks as (
    select contact_id, count(*) as n from {{ ref('crm_tasks') }}
    where not is_deleted and contact_id is not null group by 1
),
notes as (
    select contact_id, count(*) as n from {{ ref('crm_notes') }}
    where not is_deleted and contact_id is not null group by 1
)
select
    c.contact_id,
    c.provider,
    c.connection_id,
    c.tenant_id,
    c.remote_id,
    coalesce(e.n, 0) as engagement_count,
    coalesce(t.n, 0) as task_count,
    coalesce(n.n, 0) as note_count,
    cast(least(100,
        10 * coalesce(e.n, 0) + 5 * coalesce(t.n, 0) + 3 * coalesce(n.n, 0)
        + case when {{ json_length("coalesce(c.emails, '[]')") }} > 0 then 20 else 0 end
        + case when {{ json_length("coalesce(c.phones, '[]')") }} > 0 then 10 else 0 end
        + case when c.account_id is not null then 10 else 0 end
    ) as integer) as lead_score
from contacts c
left join engagements e on e.contact_id = c.contact_id
left join tasks t on t.contact_id = c.contact_id
left join notes n on n.contact_id = c.contact_id
