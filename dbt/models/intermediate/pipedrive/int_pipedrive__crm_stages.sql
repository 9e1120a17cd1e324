-- Stages: a Pipedrive stage has no outcome of its own (won/lost is the deal's `status`; a won deal stays on
-- whatever stage it was on), so is_closed and is_won are null ("not known from the stage"), never false:
-- false would claim the WON deals sitting on these stages are on a not-won stage.
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
        cast(null as boolean) as is_closed,
        cast(null as boolean) as is_won,
        {{ standard_columns('pipedrive') }}
    from stages as s
    left join pipelines as p on p.connection_id = s.connection_id and p.remote_id = s.pipeline_remote_id
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
