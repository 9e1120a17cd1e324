-- remote_id is the job's shortcode. The department is the last entry of `department_hierarchy`.
with source as (
    {{ latest_raw_keep_attributes(source('workable', 'jobs')) }}
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    is_deleted,
    extracted_at,
    _dlt_load_id as _load_id,
    {{ iso_ts(json_str('payload', 'created_at')) }} as remote_created_at,
    {{ json_str('payload', 'title') }} as title,
    {{ json_str('payload', 'code') }} as code,
    {{ json_str('payload', 'state') }} as state,
    {{ workable_last_id('payload', 'department_hierarchy') }} as department_remote_id,
    {{ json_str('payload', 'location.location_str') }} as location
from source
