with base as (
    {{ ashby_raw('offers', key_scanned=true) }}
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    raw_deleted as is_deleted,
    raw_deleted_at as deleted_at,
    extracted_at,
    _load_id,
    {{ iso_ts(json_str('payload', 'latestVersion.createdAt')) }} as remote_created_at,
    {{ json_str('payload', 'applicationId') }} as application_remote_id,
    {{ json_str('payload', 'latestVersion.author.id') }} as creator_remote_id,
    {{ iso_ts(json_str('payload', 'decidedAt')) }} as decided_at,
    cast({{ json_str('payload', 'latestVersion.startDate') }} as date) as start_date,
    {{ json_str('payload', 'offerStatus') }} as offer_status,
    {{ json_str('payload', 'acceptanceStatus') }} as acceptance_status,
    {{ json_part('payload', 'latestVersion.customFields') }} as custom_fields,
    {{ id_value_object(json_part('payload', 'latestVersion.customFields')) }} as custom_field_values  -- {id: value}: named in int models
from base
