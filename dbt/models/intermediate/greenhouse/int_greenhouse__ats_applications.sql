-- Greenhouse applications carry their own status (active/rejected/hired/converted), mapped by seed.
with applications as (
    select * from {{ ref('stg_greenhouse__applications') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as application_id,
        {{ canonical_fk('s.connection_id', 's.candidate_remote_id') }} as candidate_id,
        {{ canonical_fk('s.connection_id', 's.job_remote_id') }} as job_id,
        s.applied_at,
        s.rejected_at,
        {{ canonical_fk('s.connection_id', 's.current_stage_remote_id') }} as current_stage_id,
        s.rejection_reason_name as reject_reason,
        s.source_name as source,
        {{ canonical_fk('s.connection_id', 's.credited_to_remote_id') }} as credited_to_user_id,
        {{ map_value('map_ats__application_status', 'greenhouse', 's.status', 'status') }},
        {{ standard_columns('greenhouse', "coalesce(s.custom_fields, '{}')", 's.deleted_at') }}
    from applications as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
