with source as (
    {{ salesforce_latest(source('salesforce', 'notes')) }}
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
        {{ json_str('payload', 'Title') }} as title,
        {{ json_str('payload', 'Body') }} as body,
        {{ json_str('payload', 'OwnerId') }} as owner_remote_id,
        {{ json_str('payload', 'ParentId') }} as parent_remote_id,
        cast({{ json_str('payload', 'IsPrivate') }} as boolean) as is_private
    from source
)

select * from unpacked
