with source as (
    {{ salesforce_latest(source('salesforce', 'events')) }}
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
        {{ json_str('payload', 'OwnerId') }} as owner_remote_id,
        {{ json_str('payload', 'AccountId') }} as account_remote_id,
        {{ json_str('payload', 'WhoId') }} as who_remote_id,
        {{ json_str('payload', 'WhatId') }} as what_remote_id,
        {{ json_str('payload', 'Location') }} as location,
        {{ sf_ts(json_str('payload', 'StartDateTime')) }} as start_at,
        {{ sf_ts(json_str('payload', 'EndDateTime')) }} as end_at
    from source
)

select * from unpacked
