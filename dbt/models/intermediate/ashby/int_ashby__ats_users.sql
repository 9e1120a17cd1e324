with users as (
    select * from {{ ref('stg_ashby__users') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as user_id,
        s.first_name,
        s.last_name,
        s.email,
        s.is_disabled,
        {{ map_value('map_ats__access_role', 'ashby', 's.global_role', 'access_role') }},
        {{ standard_columns('ashby', "'{}'", 's.deleted_at') }}
    from users as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
