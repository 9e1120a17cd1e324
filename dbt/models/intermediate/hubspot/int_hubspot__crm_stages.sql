with stages as (
    select * from {{ ref('stg_hubspot__stages') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as stage_id,
        s.pipeline_label as pipeline,
        s.name,
        s.stage_order,
        s.is_closed,
        s.is_closed and s.probability >= 1 as is_won,
        {{ standard_columns('hubspot') }}
    from stages as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
