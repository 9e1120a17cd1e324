with users as (
    select * from {{ ref('stg_pipedrive__users') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as user_id,
        s.name,
        s.email,
        s.is_active and not s.is_deleted as is_active,
        {{ standard_columns('pipedrive') }}
    from users as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
