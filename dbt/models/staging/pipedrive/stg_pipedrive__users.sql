-- API v1 users (read whole every run; deactivated users have active_flag false, none are deleted).
with source as (
    {{ latest_raw(source('pipedrive', 'users')) }}
),

unpacked as (
    select
        connection_id,
        remote_id,
        remote_updated_at,
        is_deleted,
        extracted_at,
        _dlt_load_id as _load_id,
        {{ utc_text_ts(json_str('payload', 'created')) }} as remote_created_at,
        {{ json_str('payload', 'name') }} as name,
        {{ json_str('payload', 'email') }} as email,
        coalesce({{ json_str('payload', 'active_flag') }} in ('true', '1'), false) as is_active
    from source
)

select * from unpacked
