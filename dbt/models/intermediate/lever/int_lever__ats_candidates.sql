-- Candidates are Lever contacts, de-duplicated by contact id over the contact's opportunities.
-- Contact fields (name, headline, emails, phones, links, location) come from the contact's most recently
-- updated live opportunity (Lever shows the same contact data on each); tags are the union over its live
-- opportunities; the candidate is deleted when every opportunity of the contact is deleted.
with opportunities as (
    select * from {{ ref('stg_lever__opportunities') }}
    where contact_remote_id is not null
),

ranked as (
    select
        *,
        row_number() over (
            partition by connection_id, contact_remote_id
            order by is_deleted, remote_updated_at desc nulls last, remote_id
        ) as rank_in_contact
    from opportunities
),

rollup as (
    select
        connection_id,
        contact_remote_id,
        bool_and(is_deleted) as all_deleted,
        min(remote_created_at) as remote_created_at,
        max(remote_updated_at) as remote_updated_at,
        max(last_interaction_at) as last_interaction_at,
        max(extracted_at) as extracted_at,
        bool_or(confidentiality = 'confidential') as any_confidential
    from opportunities
    group by 1, 2
),

tag_sets as (
    select
        o.connection_id,
        o.contact_remote_id,
        {{ json_sorted_set('t.tag', 'not o.is_deleted') }} as live_tags,
        {{ json_sorted_set('t.tag') }} as all_tags
    from opportunities as o, {{ json_strings('o.tags') }} as t(tag)
    group by 1, 2
),

phone_items as (
    select
        connection_id,
        contact_remote_id,
        {{ json_str('item', 'value') }} as phone_value,
        {{ json_str('item', 'type') }} as phone_type,
        item_position
    from (
        select connection_id, contact_remote_id, {{ lever_json_items('phones') }}
        from ranked
        where rank_in_contact = 1
    ) as p
),

phones as (
    select
        connection_id,
        contact_remote_id,
        {{ json_agg_objects([('value', 'phone_value'), ('type', 'mapped_type')], 'item_position') }} as phones
    from (
        select *, {{ map_value('map_ats__phone_type', 'lever', 'phone_type', 'mapped_type') }}
        from phone_items
    ) as mapped
    group by 1, 2
),

s as (
    select
        r.connection_id,
        r.contact_remote_id as remote_id,
        r.name,
        r.headline,
        r.location,
        r.emails,
        r.links,
        r.contact_allowed,
        g.remote_created_at,
        g.remote_updated_at,
        g.all_deleted as is_deleted,
        g.last_interaction_at,
        g.any_confidential,
        case when g.all_deleted then ts.all_tags else ts.live_tags end as tags,
        g.extracted_at,
        r._load_id,
        p.phones
    from ranked as r
    inner join rollup as g on g.connection_id = r.connection_id and g.contact_remote_id = r.contact_remote_id
    left join phones as p on p.connection_id = r.connection_id and p.contact_remote_id = r.contact_remote_id
    left join tag_sets as ts on ts.connection_id = r.connection_id and ts.contact_remote_id = r.contact_remote_id
    where r.rank_in_contact = 1
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as candidate_id,
        split_part(s.name, ' ', 1) as first_name,
        nullif(trim(substr(s.name, length(split_part(s.name, ' ', 1)) + 2)), '') as last_name,
        cast(null as varchar) as company,
        s.headline as title,
        s.any_confidential as is_private,
        coalesce(s.contact_allowed, 'true') = 'true' as can_email,
        s.last_interaction_at,
        {{ lever_typed_strings('s.emails', 'OTHER') }} as emails,
        coalesce(s.phones, {{ to_json_type("'[]'") }}) as phones,
        {{ lever_typed_strings('s.links', 'OTHER') }} as urls,
        case when s.location is null then {{ to_json_type("'[]'") }} else {{ json_list_of(['s.location']) }} end as locations,
        coalesce(s.tags, {{ to_json_type("'[]'") }}) as tags,
        {{ standard_columns('lever') }}
    from s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
