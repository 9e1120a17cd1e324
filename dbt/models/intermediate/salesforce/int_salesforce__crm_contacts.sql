with contacts as (
    select * from {{ ref('stg_salesforce__contacts') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as contact_id,
        s.first_name,
        s.last_name,
        {{ canonical_fk('s.connection_id', 's.account_remote_id') }} as account_id,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ typed_value_list('s.email', 'WORK') }} as emails,
        {{ salesforce_values([('s.phone', 'WORK'), ('s.mobile_phone', 'MOBILE')]) }} as phones,
        {{ salesforce_addresses([('mailing_', 'SHIPPING')]) }} as addresses,
        s.last_activity_at,
        {{ standard_columns('salesforce', named_custom_fields(ref('stg_salesforce__custom_fields'), 'Contact',
                                                          values='s.fields', only_defined=true)) }}
    from contacts as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
