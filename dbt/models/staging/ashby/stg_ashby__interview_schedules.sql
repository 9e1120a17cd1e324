-- An Ashby interview schedule (one or more interview events) is one canonical interview. A cancelled
-- schedule is deleted (the canonical status has no cancellation).
with base as (
    {{ ashby_raw('interview_schedules', key_scanned=true) }}
),

events as (
    select *, {{ json_part('payload', 'interviewEvents') }} as events_json
    from base
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    {{ ashby_deletion(json_str('payload', 'status') ~ " = 'Cancelled'") }},
    extracted_at,
    _load_id,
    {{ iso_ts(json_str('payload', 'createdAt')) }} as remote_created_at,
    {{ json_str('payload', 'status') }} as status,
    {{ json_str('payload', 'applicationId') }} as application_remote_id,
    {{ json_str('payload', 'interviewStageId') }} as interview_stage_remote_id,
    {{ ashby_event_columns('events_json') }}
from events
