-- Lever stages belong to the org-wide pipeline, not to a job: job_id is null; stage_order is the
-- position in Lever's /stages list (pipeline order).
with stages as (
    select * from {{ ref('stg_lever__stages') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as job_stage_id,
        cast(null as varchar) as job_id,
        s.name,
        s.stage_order,
        {{ standard_columns('lever') }}
    from stages as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
