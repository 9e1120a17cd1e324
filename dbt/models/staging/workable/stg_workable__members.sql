-- Deactivated members stay listed (`active: false` -> is_disabled); only a member gone from the list is deleted.
with source as (
    {{ latest_raw_keep_attributes(source('workable', 'members')) }}
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
    {{ json_str('payload', 'email') }} as email,
    {{ json_str('payload', 'role') }} as role,
    not coalesce(cast({{ json_str('payload', 'active') }} as boolean), true) as is_disabled
from source
