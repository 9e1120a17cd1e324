with source as (
    {{ latest_raw(source('hubspot', 'calls')) }}
),

unpacked as (
    select
        connection_id,
        remote_id,
        remote_updated_at,
        is_deleted,
        extracted_at,
        _dlt_load_id as _load_id,
        {{ iso_ts(json_str('payload', 'createdAt')) }} as remote_created_at,
        {{ json_str('payload', 'properties.hubspot_owner_id') }} as owner_remote_id,
        {{ json_str('payload', 'associations.contacts.results[0].id') }} as contact_remote_id,
        {{ json_str('payload', 'associations.companies.results[0].id') }} as company_remote_id,
        {{ json_str('payload', 'associations.deals.results[0].id') }} as deal_remote_id,
        {{ json_part('payload', 'associations.contacts.results') }} as contact_associations,
        {{ iso_ts(json_str('payload', 'properties.hs_timestamp')) }} as occurred_at,
        {{ json_str('payload', 'properties.hs_call_title') }} as subject,
        {{ json_str('payload', 'properties.hs_call_body') }} as body,
        {{ json_str('payload', 'properties.hs_call_direction') }} as direction,
        {{ safe_cast(json_str('payload', 'properties.hs_call_duration'), 'bigint') }} as duration_ms
    from source
)

select * from unpacked
