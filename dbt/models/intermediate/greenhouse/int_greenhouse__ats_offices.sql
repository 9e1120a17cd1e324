with offices as (
    select * from {{ ref('stg_greenhouse__offices') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as office_id,
        s.name,
        s.location_name as location,
        {{ standard_columns('greenhouse', "'{}'", 's.deleted_at') }}
    from offices as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
