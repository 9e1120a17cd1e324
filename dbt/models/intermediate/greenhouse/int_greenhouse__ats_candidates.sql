-- Emails and phones keep Greenhouse's order; their types map through seeds (unmapped -> OTHER).
-- urls: website addresses (type upper-cased: personal/company/portfolio/blog/other match the canonical
-- enum) then social media addresses (SOCIAL_MEDIA). locations: the address values, as text.
with candidates as (
    select * from {{ ref('stg_greenhouse__candidates') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

email_items as (
    select connection_id, remote_id, {{ json_items('email_addresses') }}
    from candidates
),

emails as (
    select e.connection_id, e.remote_id,
           {{ json_agg_objects([('value', json_str('e.item', 'value')),
                                  ('type', "coalesce(m.canonical_value, 'OTHER')")], 'e.item_position') }} as emails
    from email_items as e
    left join {{ ref('map_ats__email_type') }} as m
        on m.provider = 'greenhouse' and lower(m.provider_value) = lower({{ json_str('e.item', 'type') }})
    group by e.connection_id, e.remote_id
),

phone_items as (
    select connection_id, remote_id, {{ json_items('phone_numbers') }}
    from candidates
),

phones as (
    select p.connection_id, p.remote_id,
           {{ json_agg_objects([('value', json_str('p.item', 'value')),
                                  ('type', "coalesce(m.canonical_value, 'OTHER')")], 'p.item_position') }} as phones
    from phone_items as p
    left join {{ ref('map_ats__phone_type') }} as m
        on m.provider = 'greenhouse' and lower(m.provider_value) = lower({{ json_str('p.item', 'type') }})
    group by p.connection_id, p.remote_id
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as candidate_id,
        s.first_name,
        s.last_name,
        s.company,
        s.title,
        s.is_private,
        s.can_email,
        s.last_activity_at as last_interaction_at,
        coalesce(e.emails, {{ to_json_type("'[]'") }}) as emails,
        coalesce(p.phones, {{ to_json_type("'[]'") }}) as phones,
        {{ json_concat(
            json_map('s.website_addresses', ['value', 'type'],
                     [('value', 'item.value'), ('type', "upper(coalesce(item.type, 'other'))")]),
            json_map('s.social_media_addresses', ['value'], [('value', 'item.value'), ('type', "'SOCIAL_MEDIA'")])
        ) }} as urls,
        {{ json_map('s.addresses', ['value', 'type'], 'item.value') }} as locations,
        coalesce({{ to_json_type('s.tags') }}, {{ to_json_type("'[]'") }}) as tags,
        {{ standard_columns('greenhouse', named_custom_fields(ref('stg_greenhouse__custom_fields'), 'candidate'),
                            's.deleted_at') }}
    from candidates as s
    left join emails as e on e.connection_id = s.connection_id and e.remote_id = s.remote_id
    left join phones as p on p.connection_id = s.connection_id and p.remote_id = s.remote_id
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
