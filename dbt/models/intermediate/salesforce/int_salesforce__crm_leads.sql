with leads as (
    select * from {{ ref('stg_salesforce__leads') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as lead_id,
        s.first_name,
        s.last_name,
        s.title,
        s.company,
        s.lead_source,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ typed_value_list('s.email', 'WORK') }} as emails,
        {{ typed_value_list('s.phone', 'WORK') }} as phones,
        {{ salesforce_addresses([('', 'SHIPPING')]) }} as addresses,
        {{ map_value('map_crm__lead_status', 'salesforce', 's.status', 'status') }},
        s.converted_at,
        {{ canonical_fk('s.connection_id', 's.converted_contact_remote_id') }} as converted_contact_id,
        {{ canonical_fk('s.connection_id', 's.converted_account_remote_id') }} as converted_account_id,
        {{ standard_columns('salesforce') }}
    from leads as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
