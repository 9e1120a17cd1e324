with base as (
    {{ ashby_raw('departments') }}
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    {{ ashby_deletion("cast(" ~ json_str('payload', 'isArchived') ~ " as boolean)") }},
    extracted_at,
    _load_id,
    {{ iso_ts(json_str('payload', 'createdAt')) }} as remote_created_at,
    {{ json_str('payload', 'name') }} as name,
    {{ json_str('payload', 'parentId') }} as parent_remote_id
from base
