-- Workable members: one `name`, split at the first space; role through seed map_workable__access_role.
with members as (
    select * from {{ ref('stg_workable__members') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as user_id,
        split_part(s.name, ' ', 1) as first_name,
        nullif(substr(s.name, length(split_part(s.name, ' ', 1)) + 2), '') as last_name,
        s.email,
        s.is_disabled,
        {{ map_value('map_workable__access_role', 'workable', 's.role', 'access_role') }},
        {{ standard_columns('workable') }}
    from members as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
