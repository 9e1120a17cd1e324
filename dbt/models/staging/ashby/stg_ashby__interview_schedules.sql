-- An Ashby interview schedule (one or more interview events) is one canonical interview. A cancelled
-- schedule is deleted (the canonical status has no cancellation).
with base as (
    {{ ashby_raw('interview_schedules', key_scanned=true) }}
),

events as (
    select
        *,
        from_json({{ json_part('payload', 'interviewEvents') }},
                  '[{"startTime":"VARCHAR","endTime":"VARCHAR","location":"VARCHAR","interviewerUserIds":["VARCHAR"]}]')
            as event_list
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
    event_list[1].location as location,
    cast(list_min(list_transform(event_list, lambda e: e.startTime)) as timestamptz) as start_at,
    cast(list_max(list_transform(event_list, lambda e: e.endTime)) as timestamptz) as end_at,
    list_sort(list_distinct(flatten(list_transform(event_list, lambda e: e.interviewerUserIds)))) as interviewer_remote_ids
from events
