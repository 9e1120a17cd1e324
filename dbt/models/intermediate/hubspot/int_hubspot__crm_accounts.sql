with companies as (
    select * from {{ ref('stg_hubspot__companies') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as account_id,
        s.name,
        s.description,
        s.industry,
        s.domain as website,
        cast(s.number_of_employees as bigint) as number_of_employees,  -- one type across providers (Salesforce: bigint)
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ address_list('s.street', 'null', 's.city', 's.state', 's.postal_code', 's.country', 'BILLING') }} as addresses,
        {{ typed_value_list('s.phone', 'WORK') }} as phones,
        s.last_activity_at,
        {{ standard_columns('hubspot', named_custom_fields(ref('stg_hubspot__custom_properties'), 'companies',
                                                       values='s.properties', only_defined=true)) }}
    from companies as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
