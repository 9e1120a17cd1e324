-- Deactivated users stay (is_disabled); only a user gone from the list is deleted.
with base as (
    {{ ashby_raw('users') }}
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    raw_deleted as is_deleted,
    raw_deleted_at as deleted_at,
    extracted_at,
    _load_id,
    {{ iso_ts(json_str('payload', 'createdAt')) }} as remote_created_at,
    {{ json_str('payload', 'firstName') }} as first_name,
    {{ json_str('payload', 'lastName') }} as last_name,
    {{ json_str('payload', 'email') }} as email,
    not coalesce(cast({{ json_str('payload', 'isEnabled') }} as boolean), true) as is_disabled,
    {{ json_str('payload', 'globalRole') }} as global_role
from base
