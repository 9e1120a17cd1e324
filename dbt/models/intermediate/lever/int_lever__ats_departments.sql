-- Lever has no department object: postings carry categories {department, team}. Each distinct department
-- name becomes a department (remote_id 'department:<name>'), each distinct team a child department of
-- its posting's department (remote_id 'team:<department>/<team>'). Derived rows are never "deleted": they
-- exist while some synced posting names them; timestamps span those postings.
with postings as (
    select * from {{ ref('stg_lever__postings') }}
),

keys as (
    select connection_id, 'department:' || department as remote_id, department as name,
           cast(null as varchar) as parent_remote_id, remote_created_at, remote_updated_at, extracted_at, _load_id
    from postings
    where department is not null
    union all
    select connection_id, 'team:' || coalesce(department, '') || '/' || team as remote_id, team as name,
           case when department is not null then 'department:' || department end as parent_remote_id,
           remote_created_at, remote_updated_at, extracted_at, _load_id
    from postings
    where team is not null
),

s as (
    select
        connection_id,
        remote_id,
        min(name) as name,  -- one value per key (derived from it): min is any value, portably
        min(parent_remote_id) as parent_remote_id,
        min(remote_created_at) as remote_created_at,
        max(remote_updated_at) as remote_updated_at,
        false as is_deleted,
        max(extracted_at) as extracted_at,
        max(_load_id) as _load_id
    from keys
    group by 1, 2
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as department_id,
        s.name,
        {{ canonical_fk('s.connection_id', 's.parent_remote_id') }} as parent_department_id,
        {{ standard_columns('lever') }}
    from s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
