-- Ashby enum values no seed maps (they became OTHER in the canonical tables): counted, never dropped.
-- Warn severity: a new provider value is worth a seed row, not a failed build.
{{ config(severity='warn', tags=['ashby', 'enum_mapping']) }}

with observed as (
    select 'map_ats__application_status' as seed, status as provider_value from {{ ref('stg_ashby__applications') }}
    union all
    select 'map_ats__job_status', status from {{ ref('stg_ashby__jobs') }}
    union all
    select 'map_ats__interview_status', status from {{ ref('stg_ashby__interview_schedules') }}
    union all
    select 'map_ats__offer_status', offer_status from {{ ref('stg_ashby__offers') }}
    union all
    select 'map_ats__access_role', global_role from {{ ref('stg_ashby__users') }}
    union all
    select 'map_ats__email_type', provider_type from {{ ref('stg_ashby__candidate_contacts') }} where kind = 'email'
    union all
    select 'map_ats__phone_type', provider_type from {{ ref('stg_ashby__candidate_contacts') }} where kind = 'phone'
),

mapped as (
    select 'map_ats__application_status' as seed, provider_value from {{ ref('map_ats__application_status') }} where provider = 'ashby'
    union all
    select 'map_ats__job_status', provider_value from {{ ref('map_ats__job_status') }} where provider = 'ashby'
    union all
    select 'map_ats__interview_status', provider_value from {{ ref('map_ats__interview_status') }} where provider = 'ashby'
    union all
    select 'map_ats__offer_status', provider_value from {{ ref('map_ats__offer_status') }} where provider = 'ashby'
    union all
    select 'map_ats__access_role', provider_value from {{ ref('map_ats__access_role') }} where provider = 'ashby'
    union all
    select 'map_ats__email_type', provider_value from {{ ref('map_ats__email_type') }} where provider = 'ashby'
    union all
    select 'map_ats__phone_type', provider_value from {{ ref('map_ats__phone_type') }} where provider = 'ashby'
)

select o.seed, o.provider_value, count(*) as records
from observed as o
left join mapped as m on m.seed = o.seed and lower(m.provider_value) = lower(o.provider_value)
where o.provider_value is not null and m.provider_value is null
group by o.seed, o.provider_value
