-- API v2 stages. Pipedrive stages are all open: won/lost is a deal status, not a stage.
with source as (
    {{ latest_raw(source('pipedrive', 'stages')) }}
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    is_deleted or coalesce({{ json_str('payload', 'is_deleted') }} = 'true', false) as is_deleted,
    extracted_at,
    _dlt_load_id as _load_id,
    {{ iso_ts(json_str('payload', 'add_time')) }} as remote_created_at,
    {{ json_str('payload', 'name') }} as name,
    {{ json_str('payload', 'pipeline_id') }} as pipeline_remote_id,
    {{ safe_cast(json_str('payload', 'order_nr'), 'integer') }} as stage_order,
    {{ safe_cast(json_str('payload', 'deal_probability'), 'integer') }} as deal_probability
from source
