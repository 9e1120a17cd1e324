with contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as contact_id,
        s.first_name,
        s.last_name,
        {{ canonical_fk('s.connection_id', 's.company_remote_id') }} as account_id,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ typed_value_list('s.email', 'WORK') }} as emails,
        {{ typed_value_list('s.phone', 'WORK') }} as phones,
        {{ address_list('s.street', 'null', 's.city', 's.state', 's.postal_code', 's.country', 'SHIPPING') }} as addresses,
        s.last_activity_at,
        {{ standard_columns('hubspot', named_custom_fields(ref('stg_hubspot__custom_properties'), 'contacts',
                                                       values='s.properties', only_defined=true)) }}
    from contacts as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
