-- Lever values that no seed maps (they land as OTHER in the canonical tables): one row per value with
-- its count. Warn, never fail: an unmapped value is counted and reported, not dropped.
{{ config(severity='warn') }}

with observed as (
    select 'map_ats__job_status' as seed_name, state as provider_value from {{ ref('stg_lever__postings') }}
    union all
    select 'map_ats__access_role', access_role from {{ ref('stg_lever__users') }}
    union all
    select 'map_ats__offer_status', {{ json_str('body', 'status') }} from {{ ref('stg_lever__offers') }}
    union all
    select 'map_ats__application_status', r.status
    from {{ ref('stg_lever__opportunities') }} as o
    join {{ ref('stg_lever__archive_reasons') }} as r
      on r.connection_id = o.connection_id and r.remote_id = o.archive_reason_remote_id
    union all
    select 'map_ats__phone_type', {{ json_str('item', 'type') }}
    from (select {{ lever_json_items('phones') }} from {{ ref('stg_lever__opportunities') }}) as p
),

mapped as (
    select 'map_ats__job_status' as seed_name, provider_value from {{ ref('map_ats__job_status') }} where provider = 'lever'
    union all
    select 'map_ats__access_role', provider_value from {{ ref('map_ats__access_role') }} where provider = 'lever'
    union all
    select 'map_ats__offer_status', provider_value from {{ ref('map_ats__offer_status') }} where provider = 'lever'
    union all
    select 'map_ats__application_status', provider_value from {{ ref('map_ats__application_status') }} where provider = 'lever'
    union all
    select 'map_ats__phone_type', provider_value from {{ ref('map_ats__phone_type') }} where provider = 'lever'
)

select o.seed_name, o.provider_value, count(*) as records
from observed as o
left join mapped as m on m.seed_name = o.seed_name and lower(m.provider_value) = lower(o.provider_value)
where o.provider_value is not null and m.provider_value is null
group by 1, 2
