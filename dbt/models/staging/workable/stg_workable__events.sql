-- Interview events (the source asks for type=interview). A cancelled interview is a deleted one, as an
-- Ashby cancelled schedule is; events carry no modification time (the read time orders versions).
with source as (
    {{ latest_raw_keep_attributes(source('workable', 'events')) }}
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    is_deleted or coalesce(cast({{ json_str('payload', 'cancelled') }} as boolean), false) as is_deleted,
    extracted_at,
    _dlt_load_id as _load_id,
    cast(null as timestamptz) as remote_created_at,
    {{ json_str('payload', 'candidate.id') }} as candidate_remote_id,
    {{ iso_ts(json_str('payload', 'starts_at')) }} as start_at,
    {{ iso_ts(json_str('payload', 'ends_at')) }} as end_at,
    coalesce({{ json_part('payload', 'members') }}, '[]') as members
from source
