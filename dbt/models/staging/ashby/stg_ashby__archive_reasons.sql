with base as (
    {{ ashby_raw('archive_reasons') }}
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    {{ ashby_deletion("cast(" ~ json_str('payload', 'isArchived') ~ " as boolean)") }},
    extracted_at,
    _load_id,
    {{ json_str('payload', 'text') }} as text,
    {{ json_str('payload', 'reasonType') }} as reason_type
from base
