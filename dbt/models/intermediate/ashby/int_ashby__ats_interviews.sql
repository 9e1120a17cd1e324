-- One canonical interview per Ashby interview schedule: start/end span its events, interviewers are
-- the union of the events' interviewers. Ashby exposes no organizer on a schedule (null).
with schedules as (
    select * from {{ ref('stg_ashby__interview_schedules') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as interview_id,
        {{ canonical_fk('s.connection_id', 's.application_remote_id') }} as application_id,
        {{ canonical_fk('s.connection_id', 's.interview_stage_remote_id') }} as job_stage_id,
        cast(null as varchar) as organizer_user_id,
        {{ ashby_fk_list('s.connection_id', 's.interviewer_remote_ids') }} as interviewer_user_ids,
        s.location,
        s.start_at,
        s.end_at,
        {{ map_value('map_ats__interview_status', 'ashby', 's.status', 'status') }},
        {{ standard_columns('ashby', "'{}'", 's.deleted_at') }}
    from schedules as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
