-- Workable has no office object: each distinct job location (`location.location_str`) becomes an office
-- (remote_id 'location:<location>'), kept while some synced, not deleted job names it.
with jobs as (
    select * from {{ ref('stg_workable__jobs') }}
),

s as (
    select
        connection_id,
        'location:' || location as remote_id,
        location as name,
        min(remote_created_at) as remote_created_at,
        max(remote_updated_at) as remote_updated_at,
        false as is_deleted,
        max(extracted_at) as extracted_at,
        max(_load_id) as _load_id
    from jobs
    where location is not null and not is_deleted
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
        {{ standard_columns('workable') }}
    from s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
