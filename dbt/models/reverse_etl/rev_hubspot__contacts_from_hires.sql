-- Cross-provider: every candidate an ATS hired becomes a contact in the HubSpot portal of the same tenant,
-- matched by email (HubSpot's own upsert by the unique `email` property: a contact that already exists is
-- updated, not duplicated), with the title of the job they were hired for.
with hires as (
    select a.candidate_id, max(j.name) as job_name
    from {{ ref('ats_applications') }} as a
    left join {{ ref('ats_jobs') }} as j on j.job_id = a.job_id
    where a.status = 'HIRED' and not a.is_deleted
    group by a.candidate_id
),

crm as (
    select connection_id, tenant_id from {{ source('canonry_ops', 'connections') }} where provider = 'hubspot'
)

select
    c.candidate_id as record_key,
    crm.connection_id,
    cast(null as varchar) as external_id,
    lower({{ first_list_value('c.emails') }}) as email,
    c.first_name,
    c.last_name,
    hires.job_name as job_title
from hires
inner join {{ ref('ats_candidates') }} as c on c.candidate_id = hires.candidate_id
inner join crm on crm.tenant_id = c.tenant_id
where not c.is_deleted and {{ first_list_value('c.emails') }} is not null
