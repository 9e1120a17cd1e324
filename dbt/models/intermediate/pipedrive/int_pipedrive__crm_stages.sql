-- Stages: Pipedrive has no closed stages (won/lost is a deal status), so is_closed and is_won are false.
with stages as (
    select * from {{ ref('stg_pipedrive__stages') }}
),

pipelines as (
    select * from {{ ref('stg_pipedrive__pipelines') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as stage_id,
        p.name as pipeline,
        s.name,
        s.stage_order,
        false as is_closed,
        false as is_won,
        {{ standard_columns('pipedrive') }}
    from stages as s
    left join pipelines as p on p.connection_id = s.connection_id and p.remote_id = s.pipeline_remote_id
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
