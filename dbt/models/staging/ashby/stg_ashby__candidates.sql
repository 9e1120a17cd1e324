with base as (
    {{ ashby_raw('candidates', key_scanned=true) }}
),

unpacked as (
    select
        connection_id,
        remote_id,
        remote_updated_at,
        raw_deleted as is_deleted,
        raw_deleted_at as deleted_at,
        extracted_at,
        _load_id,
        {{ iso_ts(json_str('payload', 'createdAt')) }} as remote_created_at,
        {{ json_str('payload', 'name') }} as full_name,
        {{ json_str('payload', 'position') }} as title,
        {{ json_str('payload', 'company') }} as company,
        {{ json_str('payload', 'location.locationSummary') }} as location_summary,
        {{ json_part('payload', 'emailAddresses') }} as email_addresses,
        {{ json_part('payload', 'phoneNumbers') }} as phone_numbers,
        {{ json_part('payload', 'socialLinks') }} as social_links,
        {{ json_part('payload', 'tags') }} as tags,
        {{ json_part('payload', 'customFields') }} as custom_fields,
        {{ id_value_object(json_part('payload', 'customFields')) }} as custom_field_values,  -- {id: value}: named in int models
        {{ json_str('payload', 'source.id') }} as source_remote_id,
        {{ json_str('payload', 'creditedToUser.id') }} as credited_to_user_remote_id
    from base
)

select
    *,
    split_part(full_name, ' ', 1) as first_name,
    nullif(trim(substr(full_name, length(split_part(full_name, ' ', 1)) + 2)), '') as last_name
from unpacked
