-- Greenhouse values that no seed maps (they became OTHER in canonical): one row per value, with its count.
-- A warning, not a failure: the record still lands, and this says which map needs a row.
{{ config(severity='warn') }}

with observed as (
    select 'map_ats__application_status' as seed, status as provider_value from {{ ref('stg_greenhouse__applications') }}
    union all
    select 'map_ats__job_status', status from {{ ref('stg_greenhouse__jobs') }}
    union all
    select 'map_ats__interview_status', status from {{ ref('stg_greenhouse__scheduled_interviews') }}
    union all
    select 'map_ats__offer_status',
           case when status = 'unresolved' and sent_on is null then 'unresolved_unsent' else status end
    from {{ ref('stg_greenhouse__offers') }}
    union all
    select 'map_ats__access_role', case when site_admin then 'site_admin' else permission_level end
    from {{ ref('stg_greenhouse__users') }}
    union all
    select 'map_ats__email_type', {{ json_str('t.item', 'type') }}
    from (select {{ json_items('email_addresses') }} from {{ ref('stg_greenhouse__candidates') }}) as t
    union all
    select 'map_ats__phone_type', {{ json_str('t.item', 'type') }}
    from (select {{ json_items('phone_numbers') }} from {{ ref('stg_greenhouse__candidates') }}) as t
),

maps as (
    {% for seed in ['map_ats__application_status', 'map_ats__job_status', 'map_ats__interview_status',
                    'map_ats__offer_status', 'map_ats__access_role', 'map_ats__email_type', 'map_ats__phone_type'] %}
    select '{{ seed }}' as seed, lower(provider_value) as provider_value from {{ ref(seed) }}
    where provider = 'greenhouse'
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select o.seed, o.provider_value, count(*) as records
from observed as o
left join maps as m on m.seed = o.seed and m.provider_value = lower(o.provider_value)
where o.provider_value is not null and m.provider_value is null
group by o.seed, o.provider_value
