-- Deal pipeline stages: one raw row per pipeline (the endpoint has no paging), one row per stage here.
with source as (
    {{ latest_raw(source('hubspot', 'pipelines')) }}
),

stages as (
    select
        connection_id,
        remote_id as pipeline_remote_id,
        {{ json_str('payload', 'label') }} as pipeline_label,
        remote_updated_at,
        is_deleted,
        extracted_at,
        _dlt_load_id as _load_id,
        {{ json_array_items('payload', 'stages') }} as stage
    from source
),

unpacked as (
    select
        connection_id,
        {{ json_str('stage', 'id') }} as remote_id,
        pipeline_remote_id,
        pipeline_label,
        {{ json_str('stage', 'label') }} as name,
        cast({{ json_str('stage', 'displayOrder') }} as integer) as stage_order,
        {{ json_str('stage', 'metadata.isClosed') }} = 'true' as is_closed,
        {{ safe_cast(json_str('stage', 'metadata.probability'), 'double') }} as probability,
        {{ iso_ts(json_str('stage', 'createdAt')) }} as remote_created_at,
        coalesce({{ iso_ts(json_str('stage', 'updatedAt')) }}, remote_updated_at) as remote_updated_at,
        is_deleted or coalesce({{ json_str('stage', 'archived') }} = 'true', false) as is_deleted,
        extracted_at,
        _load_id
    from stages
)

select * from unpacked
