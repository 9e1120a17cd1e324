with owners as (
    select * from {{ ref('stg_hubspot__owners') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as user_id,
        trim(coalesce(s.first_name, '') || ' ' || coalesce(s.last_name, '')) as name,
        s.email,
        not s.is_deleted as is_active,
        {{ standard_columns('hubspot') }}
    from owners as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
