-- The pipeline's stages from the latest read of /stages (one raw row per read, the array in pipeline
-- order). A stage missing from the latest read is gone from Lever and contributes no row.
with source as (
    {{ latest_raw(source('lever', 'stages')) }}
),

items as (
    select
        connection_id,
        remote_updated_at,
        is_deleted,
        extracted_at,
        _dlt_load_id as _load_id,
        {{ lever_json_items('payload') }}
    from source
)

select
    connection_id,
    {{ json_str('item', 'id') }} as remote_id,
    {{ json_str('item', 'text') }} as name,
    cast(item_position as integer) as stage_order,
    cast(null as timestamptz) as remote_created_at,
    remote_updated_at,
    is_deleted,
    extracted_at,
    _load_id
from items
