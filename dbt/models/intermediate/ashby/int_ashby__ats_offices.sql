-- Ashby locations are the canonical offices; `location` is "city, region, country".
with locations as (
    select * from {{ ref('stg_ashby__locations') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as office_id,
        s.name,
        nullif(s.location, '') as location,
        {{ standard_columns('ashby', "'{}'", 's.deleted_at') }}
    from locations as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
