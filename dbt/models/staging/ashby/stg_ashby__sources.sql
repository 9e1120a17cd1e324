with base as (
    {{ ashby_raw('sources') }}
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    {{ ashby_deletion("cast(" ~ json_str('payload', 'isArchived') ~ " as boolean)") }},
    extracted_at,
    _load_id,
    {{ json_str('payload', 'title') }} as title,
    {{ json_str('payload', 'sourceType.title') }} as source_type
from base
