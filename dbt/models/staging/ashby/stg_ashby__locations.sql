with base as (
    {{ ashby_raw('locations') }}
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    {{ ashby_deletion("cast(" ~ json_str('payload', 'isArchived') ~ " as boolean)") }},
    extracted_at,
    _load_id,
    cast(null as timestamptz) as remote_created_at,
    {{ json_str('payload', 'name') }} as name,
    concat_ws(', ',
        {{ json_str('payload', 'address.postalAddress.addressLocality') }},
        {{ json_str('payload', 'address.postalAddress.addressRegion') }},
        {{ json_str('payload', 'address.postalAddress.addressCountry') }}) as location,
    coalesce(cast({{ json_str('payload', 'isRemote') }} as boolean), false) as is_remote
from base
