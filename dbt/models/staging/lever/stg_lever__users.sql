-- Lever users have no modification time: the raw rows are ordered by read time; the canonical
-- remote_updated_at is the latest time Lever reports (deactivation, else creation).
with source as (
    {{ latest_raw(source('lever', 'users')) }}
),

unpacked as (
    select
        connection_id,
        remote_id,
        is_deleted,
        extracted_at,
        _dlt_load_id as _load_id,
        {{ epoch_ms_ts(json_str('payload', 'createdAt')) }} as remote_created_at,
        {{ epoch_ms_ts(json_str('payload', 'deactivatedAt')) }} as deactivated_at,
        {{ json_str('payload', 'name') }} as name,
        {{ json_str('payload', 'email') }} as email,
        {{ json_str('payload', 'accessRole') }} as access_role
    from source
)

select
    *,
    coalesce(deactivated_at, remote_created_at) as remote_updated_at
from unpacked
