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
    select connection_id, remote_id, unnest(items) as item, unnest(generate_series(1, len(items))) as position
    from (select connection_id, remote_id,
                 from_json(email_addresses, '[{"value": "VARCHAR", "type": "VARCHAR"}]') as items
          from candidates)
),

emails as (
    select e.connection_id, e.remote_id,
           to_json(list({'value': e.item.value, 'type': coalesce(m.canonical_value, 'OTHER')}
                        order by e.position)) as emails
    from email_items as e
    left join {{ ref('map_ats__email_type') }} as m
        on m.provider = 'greenhouse' and lower(m.provider_value) = lower(e.item.type)
    group by e.connection_id, e.remote_id
),

phone_items as (
    select connection_id, remote_id, unnest(items) as item, unnest(generate_series(1, len(items))) as position
    from (select connection_id, remote_id,
                 from_json(phone_numbers, '[{"value": "VARCHAR", "type": "VARCHAR"}]') as items
          from candidates)
),

phones as (
    select p.connection_id, p.remote_id,
           to_json(list({'value': p.item.value, 'type': coalesce(m.canonical_value, 'OTHER')}
                        order by p.position)) as phones
    from phone_items as p
    left join {{ ref('map_ats__phone_type') }} as m
        on m.provider = 'greenhouse' and lower(m.provider_value) = lower(p.item.type)
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
        coalesce(e.emails, '[]'::json) as emails,
        coalesce(p.phones, '[]'::json) as phones,
        to_json(list_concat(
            coalesce(list_transform(from_json(s.website_addresses, '[{"value": "VARCHAR", "type": "VARCHAR"}]'),
                                    lambda u: {'value': u.value, 'type': upper(coalesce(u.type, 'other'))}), []),
            coalesce(list_transform(from_json(s.social_media_addresses, '[{"value": "VARCHAR"}]'),
                                    lambda u: {'value': u.value, 'type': 'SOCIAL_MEDIA'}), [])
        )) as urls,
        coalesce(to_json(list_transform(from_json(s.addresses, '[{"value": "VARCHAR", "type": "VARCHAR"}]'),
                                        lambda a: a.value)), '[]'::json) as locations,
        coalesce(cast(s.tags as json), '[]'::json) as tags,
        {{ standard_columns('greenhouse', "coalesce(s.custom_fields, '{}')", 's.deleted_at') }}
    from candidates as s
    left join emails as e on e.connection_id = s.connection_id and e.remote_id = s.remote_id
    left join phones as p on p.connection_id = s.connection_id and p.remote_id = s.remote_id
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
