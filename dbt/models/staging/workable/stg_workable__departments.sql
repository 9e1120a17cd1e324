with source as (
    {{ latest_raw_keep_attributes(source('workable', 'departments')) }}
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    is_deleted,
    extracted_at,
    _dlt_load_id as _load_id,
    cast(null as timestamptz) as remote_created_at,
    {{ json_str('payload', 'name') }} as name,
    {{ json_str('payload', 'parent_id') }} as parent_remote_id
from source
