with source as (
    {{ salesforce_latest(source('salesforce', 'users')) }}
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
        {{ json_str('payload', 'Name') }} as name,
        {{ json_str('payload', 'FirstName') }} as first_name,
        {{ json_str('payload', 'LastName') }} as last_name,
        {{ json_str('payload', 'Email') }} as email,
        {{ json_str('payload', 'Username') }} as username,
        cast({{ json_str('payload', 'IsActive') }} as boolean) as is_active
    from source
)

select * from unpacked
