with source as (
    {{ latest_raw(source('lever', 'archive_reasons')) }}
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    is_deleted,
    extracted_at,
    _dlt_load_id as _load_id,
    {{ json_str('payload', 'text') }} as name,
    {{ json_str('payload', 'status') }} as status
from source
