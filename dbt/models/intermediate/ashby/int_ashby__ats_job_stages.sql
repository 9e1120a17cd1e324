-- Interview stages belong to interview plans shared by jobs: org-wide stages, job_id null.
with stages as (
    select * from {{ ref('stg_ashby__interview_stages') }}
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
        {{ standard_columns('ashby', "'{}'", 's.deleted_at') }}
    from stages as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
