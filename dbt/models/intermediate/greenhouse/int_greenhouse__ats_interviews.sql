with interviews as (
    select * from {{ ref('stg_greenhouse__scheduled_interviews') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as interview_id,
        {{ canonical_fk('s.connection_id', 's.application_remote_id') }} as application_id,
        {{ canonical_fk('s.connection_id', 's.job_stage_remote_id') }} as job_stage_id,
        {{ canonical_fk('s.connection_id', 's.organizer_remote_id') }} as organizer_user_id,
        {{ json_map('s.interviewers', ['user_id'], canonical_id('s.connection_id', 'item.user_id')) }}
            as interviewer_user_ids,
        s.location,
        s.start_at,
        s.end_at,
        {{ map_value('map_ats__interview_status', 'greenhouse', 's.status', 'status') }},
        {{ standard_columns('greenhouse', "'{}'", 's.deleted_at') }}
    from interviews as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
