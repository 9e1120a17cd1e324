-- Interview events: the candidate is the application; interviewers are the event's members. Workable names
-- no stage, organizer or place on an event. Status: SCHEDULED until it starts, then COMPLETE (Workable
-- keeps no feedback state on events); cancelled events are deleted (stg_workable__events).
with events as (
    select * from {{ ref('stg_workable__events') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as interview_id,
        {{ canonical_fk('s.connection_id', 's.candidate_remote_id') }} as application_id,
        cast(null as varchar) as job_stage_id,
        cast(null as varchar) as organizer_user_id,
        {{ json_map('s.members', ['id'], "md5(cast(s.connection_id as varchar) || ':' || item.id)") }}
            as interviewer_user_ids,
        cast(null as varchar) as location,
        s.start_at,
        s.end_at,
        case when s.start_at > current_timestamp then 'SCHEDULED' else 'COMPLETE' end as status,
        {{ standard_columns('workable') }}
    from events as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
