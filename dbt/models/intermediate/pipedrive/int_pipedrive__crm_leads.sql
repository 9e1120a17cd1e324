-- Leads: name, emails and phones come from the linked person, company from the linked organization;
-- `title` is the lead's title. Status: archived -> CLOSED, otherwise OPEN (map_crm__lead_status).
with leads as (
    select * from {{ ref('stg_pipedrive__leads') }}
),

persons as (
    select * from {{ ref('stg_pipedrive__persons') }}
),

organizations as (
    select * from {{ ref('stg_pipedrive__organizations') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as lead_id,
        p.first_name,
        p.last_name,
        s.title,
        o.name as company,
        s.source_name as lead_source,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ typed_value_list('p.email', 'WORK') }} as emails,
        {{ typed_value_list('p.phone', 'WORK') }} as phones,
        {{ to_json_type("'[]'") }} as addresses,
        {{ map_value('map_crm__lead_status', 'pipedrive', 's.archived_status', 'status') }},
        cast(null as timestamptz) as converted_at,
        cast(null as varchar) as converted_contact_id,
        cast(null as varchar) as converted_account_id,
        {{ standard_columns('pipedrive') }}
    from leads as s
    left join persons as p on p.connection_id = s.connection_id and p.remote_id = s.person_remote_id
    left join organizations as o on o.connection_id = s.connection_id and o.remote_id = s.organization_remote_id
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
