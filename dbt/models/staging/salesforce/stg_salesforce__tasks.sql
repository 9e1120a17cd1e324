with source as (
    {{ salesforce_latest(source('salesforce', 'tasks')) }}
),

unpacked as (
    select
        connection_id,
        remote_id,
        remote_updated_at,
        is_deleted,
        extracted_at,
        _dlt_load_id as _load_id,
        {{ sf_ts(json_str('payload', 'CreatedDate')) }} as remote_created_at,
        {{ json_str('payload', 'Subject') }} as subject,
        {{ json_str('payload', 'Description') }} as description,
        {{ json_str('payload', 'Status') }} as status,
        cast({{ json_str('payload', 'IsClosed') }} as boolean) as is_closed,
        {{ json_str('payload', 'TaskSubtype') }} as task_subtype,
        {{ json_str('payload', 'CallType') }} as call_type,
        {{ json_str('payload', 'OwnerId') }} as owner_remote_id,
        {{ json_str('payload', 'AccountId') }} as account_remote_id,
        {{ json_str('payload', 'WhoId') }} as who_remote_id,
        {{ json_str('payload', 'WhatId') }} as what_remote_id,
        {{ sf_ts(json_str('payload', 'ActivityDate')) }} as due_at,
        {{ sf_ts(json_str('payload', 'CompletedDateTime')) }} as completed_at
    from source
)

select * from unpacked
