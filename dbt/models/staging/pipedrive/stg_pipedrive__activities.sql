-- API v2 activities (every type); crm_tasks and crm_engagements split them by `type`.
with source as (
    {{ latest_raw_keep_attributes(source('pipedrive', 'activities')) }}
),

unpacked as (
    select
        connection_id,
        remote_id,
        remote_updated_at,
        is_deleted,
        extracted_at,
        _dlt_load_id as _load_id,
        {{ iso_ts(json_str('payload', 'add_time')) }} as remote_created_at,
        {{ json_str('payload', 'type') }} as activity_type,
        {{ json_str('payload', 'subject') }} as subject,
        {{ json_str('payload', 'note') }} as note,
        {{ json_str('payload', 'owner_id') }} as owner_remote_id,
        {{ json_str('payload', 'person_id') }} as person_remote_id,
        {{ json_str('payload', 'org_id') }} as organization_remote_id,
        {{ json_str('payload', 'deal_id') }} as deal_remote_id,
        cast(nullif({{ json_str('payload', 'due_date') }}, '') as date) as due_date,
        nullif({{ json_str('payload', 'due_time') }}, '') as due_time,
        nullif({{ json_str('payload', 'duration') }}, '') as duration,
        coalesce({{ json_str('payload', 'done') }} in ('true', '1'), false) as is_done,
        {{ iso_ts(json_str('payload', 'marked_as_done_time')) }} as marked_as_done_at
    from source
)

select
    *,
    case when due_time is not null
         then cast(cast(due_date as varchar) || ' ' || due_time || ':00+00:00' as timestamptz) end as start_at,
    case when due_time is not null and duration is not null
         then cast(cast(due_date as varchar) || ' ' || due_time || ':00+00:00' as timestamptz)
              + cast(duration || ':00' as interval) end as end_at
from unpacked
