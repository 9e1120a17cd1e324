-- Organizations. Pipedrive sends country names; the ISO code comes from map_geo__country (unknown
-- names keep their text).
with organizations as (
    select * from {{ ref('stg_pipedrive__organizations') }}
),

countries as (
    select provider_value, canonical_value from {{ ref('map_geo__country') }} where provider = 'pipedrive'
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as account_id,
        s.name,
        cast(null as varchar) as description,
        s.industry,
        s.website,
        cast(s.number_of_employees as bigint) as number_of_employees,  -- one type across providers (Salesforce: bigint)
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ address_list('s.street', 'null', 's.city', 's.state', 's.postal_code',
                        'coalesce(m.canonical_value, s.country_name)', 'BILLING') }} as addresses,
        {{ to_json_type("'[]'") }} as phones,
        cast(null as timestamptz) as last_activity_at,
        {{ standard_columns('pipedrive', named_custom_fields(ref('stg_pipedrive__custom_fields'), 'organization')) }}
    from organizations as s
    left join countries as m on lower(m.provider_value) = lower(s.country_name)
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
