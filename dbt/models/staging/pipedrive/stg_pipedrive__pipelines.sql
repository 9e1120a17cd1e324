with source as (
    {{ latest_raw(source('pipedrive', 'pipelines')) }}
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
    {{ safe_cast(json_str('payload', 'order_nr'), 'integer') }} as pipeline_order
from source
