-- Lever has no office object: each distinct posting location (categories.location and allLocations)
-- becomes an office (remote_id 'location:<name>'), kept while some synced posting names it.
with postings as (
    select * from {{ ref('stg_lever__postings') }}
),

locations as (
    select connection_id, location_name, remote_created_at, remote_updated_at, extracted_at, _load_id
    from (
        select *, location as location_name from postings where location is not null
        union all
        select p.*, t.location_name from postings as p, {{ json_strings('p.all_locations') }} as t(location_name)
    ) as p
    where location_name is not null
),

s as (
    select
        connection_id,
        'location:' || location_name as remote_id,
        location_name as name,
        min(remote_created_at) as remote_created_at,
        max(remote_updated_at) as remote_updated_at,
        false as is_deleted,
        max(extracted_at) as extracted_at,
        max(_load_id) as _load_id
    from locations
    group by 1, 2, 3
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as office_id,
        s.name,
        s.name as location,
        {{ standard_columns('lever') }}
    from s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
