with source as (
    {{ latest_raw(source('hubspot', 'owners')) }}
),

unpacked as (
    select
        connection_id,
        remote_id,
        remote_updated_at,
        is_deleted,
        extracted_at,
        _dlt_load_id as _load_id,
        {{ iso_ts(json_str('payload', 'createdAt')) }} as remote_created_at,
        {{ json_str('payload', 'firstName') }} as first_name,
        {{ json_str('payload', 'lastName') }} as last_name,
        {{ json_str('payload', 'email') }} as email,
        {{ json_str('payload', 'type') }} as owner_type
    from source
)

select * from unpacked
