-- The account-wide pipeline (no per-job stages are read): job_id is null, order is Workable's position.
with stages as (
    select * from {{ ref('stg_workable__stages') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as job_stage_id,
        cast(null as varchar) as job_id,
        s.name,
        s.position as stage_order,
        {{ standard_columns('workable') }}
    from stages as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
