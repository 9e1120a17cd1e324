-- API v1 leads (UUID ids, ISO times with milliseconds). Deletions found by the key scan carry only the
-- id: attributes come from the last version before.
with source as (
    {{ latest_raw_keep_attributes(source('pipedrive', 'leads')) }}
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
        {{ json_str('payload', 'title') }} as title,
        {{ json_str('payload', 'owner_id') }} as owner_remote_id,
        {{ json_str('payload', 'person_id') }} as person_remote_id,
        {{ json_str('payload', 'organization_id') }} as organization_remote_id,
        {{ json_str('payload', 'source_name') }} as source_name,
        case when {{ json_str('payload', 'is_archived') }} = 'true' then 'archived' else 'not_archived' end
            as archived_status,
        {{ safe_cast(json_str('payload', 'value.amount'), 'decimal(18, 2)') }} as amount,
        {{ json_str('payload', 'value.currency') }} as currency
    from source
)

select * from unpacked
