-- The account's pipeline; remote_id is the stage slug (what a candidate's `stage` names).
with source as (
    {{ latest_raw_keep_attributes(source('workable', 'stages')) }}
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
    {{ json_str('payload', 'kind') }} as kind,
    {{ safe_cast(json_str('payload', 'position'), 'integer') }} as position
from source
