-- Ashby has one `name`: split at the first space. Email/phone types map through seeds (unmapped: OTHER).
with candidates as (
    select * from {{ ref('stg_ashby__candidates') }}
),

contacts as (
    select * from {{ ref('stg_ashby__candidate_contacts') }}
),

email_types as (
    select * from {{ ref('map_ats__email_type') }} where provider = 'ashby'
),

phone_types as (
    select * from {{ ref('map_ats__phone_type') }} where provider = 'ashby'
),

typed as (
    select
        t.connection_id,
        t.remote_id,
        t.kind,
        t.position,
        t.value,
        coalesce(case when t.kind = 'email' then e.canonical_value else p.canonical_value end, 'OTHER') as type
    from contacts as t
    left join email_types as e on t.kind = 'email' and lower(e.provider_value) = lower(t.provider_type)
    left join phone_types as p on t.kind = 'phone' and lower(p.provider_value) = lower(t.provider_type)
),

lists as (
    select
        connection_id,
        remote_id,
        {{ json_agg_objects([('value', 'value'), ('type', 'type')], 'position', "kind = 'email'") }} as emails,
        {{ json_agg_objects([('value', 'value'), ('type', 'type')], 'position', "kind = 'phone'") }} as phones
    from typed
    group by connection_id, remote_id
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as candidate_id,
        s.first_name,
        s.last_name,
        s.company,
        s.title,
        false as is_private,
        coalesce({{ json_length('l.emails') }}, 0) > 0 as can_email,
        cast(null as timestamptz) as last_interaction_at,
        coalesce(l.emails, {{ to_json_type("'[]'") }}) as emails,
        coalesce(l.phones, {{ to_json_type("'[]'") }}) as phones,
        {{ json_map('s.social_links', ['url', 'type'],
                    [('value', 'item.url'), ('type', "case when item.type in ('Website', 'PersonalWebsite') then 'PERSONAL' else 'SOCIAL_MEDIA' end")]) }} as urls,
        case when s.location_summary is null then {{ to_json_type("'[]'") }} else {{ json_list_of(['s.location_summary']) }} end as locations,
        {{ json_map('s.tags', ['title'], 'item.title') }} as tags,
        {{ standard_columns('ashby', named_custom_fields(ref('stg_ashby__custom_fields'), 'Candidate',
                                                   values='s.custom_field_values'),
                            's.deleted_at') }}
    from candidates as s
    left join lists as l on l.connection_id = s.connection_id and l.remote_id = s.remote_id
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
