-- Greenhouse stages belong to one job (job_id always set); stage_order is v3's sort_order.
with stages as (
    select * from {{ ref('stg_greenhouse__job_stages') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as job_stage_id,
        {{ canonical_fk('s.connection_id', 's.job_remote_id') }} as job_id,
        s.name,
        s.sort_order as stage_order,
        {{ standard_columns('greenhouse', "'{}'", 's.deleted_at') }}
    from stages as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
