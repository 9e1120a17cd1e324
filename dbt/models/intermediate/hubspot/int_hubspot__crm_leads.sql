-- HubSpot has no lead object in CRM v3's core set: a lead is a contact whose lifecycle stage is `lead`.
-- The contact also stays in crm_contacts (it is one in HubSpot); conversion is not tracked here.
with contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
),

companies as (
    select * from {{ ref('stg_hubspot__companies') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as lead_id,
        s.first_name,
        s.last_name,
        s.job_title as title,
        co.name as company,
        s.lead_source,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ typed_value_list('s.email', 'WORK') }} as emails,
        {{ typed_value_list('s.phone', 'WORK') }} as phones,
        {{ address_list('s.street', 'null', 's.city', 's.state', 's.postal_code', 's.country', 'SHIPPING') }} as addresses,
        {{ map_value('map_crm__lead_status', 'hubspot', 's.lead_status', 'status') }},
        cast(null as timestamptz) as converted_at,
        cast(null as varchar) as converted_contact_id,
        cast(null as varchar) as converted_account_id,
        {{ standard_columns('hubspot') }}
    from contacts as s
    left join companies as co on co.connection_id = s.connection_id and co.remote_id = s.company_remote_id
    left join connections as c on c.connection_id = s.connection_id
    where s.lifecycle_stage = 'lead'
)

select * from final
