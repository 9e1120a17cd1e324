-- API v2 deals, deleted ones included (`status: deleted`, `is_deleted: true`). A deleted deal's status
-- before deletion is recovered from its close times.
with source as (
    {{ latest_raw(source('pipedrive', 'deals')) }}
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
        {{ json_str('payload', 'title') }} as name,
        {{ safe_cast(json_str('payload', 'value'), 'decimal(18, 2)') }} as amount,
        {{ json_str('payload', 'currency') }} as currency,
        {{ json_str('payload', 'status') }} as provider_status,
        case
            when {{ json_str('payload', 'status') }} in ('open', 'won', 'lost') then {{ json_str('payload', 'status') }}
            when {{ json_str('payload', 'won_time') }} is not null then 'won'
            when {{ json_str('payload', 'lost_time') }} is not null then 'lost'
            else 'open'
        end as status,
        {{ json_str('payload', 'stage_id') }} as stage_remote_id,
        {{ json_str('payload', 'pipeline_id') }} as pipeline_remote_id,
        {{ json_str('payload', 'owner_id') }} as owner_remote_id,
        {{ json_str('payload', 'org_id') }} as organization_remote_id,
        {{ json_str('payload', 'person_id') }} as person_remote_id,
        cast(nullif({{ json_str('payload', 'expected_close_date') }}, '') as date) as expected_close_date,
        {{ iso_ts(json_str('payload', 'close_time')) }} as close_time,
        {{ json_str('payload', 'lost_reason') }} as lost_reason,
        {{ json_part('payload', 'custom_fields') }} as custom_fields
    from source
)

select * from unpacked
