with accounts as (
    select * from {{ ref('stg_salesforce__accounts') }}
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
        s.website,
        s.number_of_employees,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ salesforce_addresses([('billing_', 'BILLING'), ('shipping_', 'SHIPPING')]) }} as addresses,
        {{ typed_value_list('s.phone', 'WORK') }} as phones,
        s.last_activity_at,
        {{ standard_columns('salesforce', named_custom_fields(ref('stg_salesforce__custom_fields'), 'Account',
                                                          values='s.fields', only_defined=true)) }}
    from accounts as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
