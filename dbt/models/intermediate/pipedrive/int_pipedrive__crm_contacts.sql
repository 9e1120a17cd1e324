-- Persons: the primary (first) email and phone; Pipedrive's label work/home/other maps to the type.
with persons as (
    select * from {{ ref('stg_pipedrive__persons') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as contact_id,
        s.first_name,
        s.last_name,
        {{ canonical_fk('s.connection_id', 's.organization_remote_id') }} as account_id,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        case when lower(s.email_label) = 'home' then {{ typed_value_list('s.email', 'PERSONAL') }}
             when lower(s.email_label) = 'other' then {{ typed_value_list('s.email', 'OTHER') }}
             else {{ typed_value_list('s.email', 'WORK') }} end as emails,
        case when lower(s.phone_label) = 'home' then {{ typed_value_list('s.phone', 'HOME') }}
             when lower(s.phone_label) = 'mobile' then {{ typed_value_list('s.phone', 'MOBILE') }}
             when lower(s.phone_label) = 'other' then {{ typed_value_list('s.phone', 'OTHER') }}
             else {{ typed_value_list('s.phone', 'WORK') }} end as phones,
        {{ to_json_type("'[]'") }} as addresses,
        cast(null as timestamptz) as last_activity_at,
        {{ standard_columns('pipedrive', named_custom_fields(ref('stg_pipedrive__custom_fields'), 'person')) }}
    from persons as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
