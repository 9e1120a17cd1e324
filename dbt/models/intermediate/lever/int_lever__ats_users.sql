with users as (
    select * from {{ ref('stg_lever__users') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as user_id,
        split_part(s.name, ' ', 1) as first_name,
        nullif(trim(substr(s.name, length(split_part(s.name, ' ', 1)) + 2)), '') as last_name,
        s.email,
        s.deactivated_at is not null as is_disabled,
        {{ map_value('map_ats__access_role', 'lever', 's.access_role', 'access_role') }},
        {{ standard_columns('lever') }}
    from users as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
