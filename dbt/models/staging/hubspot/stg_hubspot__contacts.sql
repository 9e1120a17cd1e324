with source as (
    {{ latest_raw(source('hubspot', 'contacts')) }}
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
        {{ json_str('payload', 'properties.firstname') }} as first_name,
        {{ json_str('payload', 'properties.lastname') }} as last_name,
        {{ json_str('payload', 'properties.email') }} as email,
        {{ json_str('payload', 'properties.phone') }} as phone,
        {{ json_str('payload', 'properties.jobtitle') }} as job_title,
        {{ json_str('payload', 'properties.lifecyclestage') }} as lifecycle_stage,
        {{ json_str('payload', 'properties.hs_lead_status') }} as lead_status,
        {{ json_str('payload', 'properties.hs_analytics_source') }} as lead_source,
        {{ json_str('payload', 'properties.hubspot_owner_id') }} as owner_remote_id,
        coalesce(
            {{ json_str('payload', 'properties.associatedcompanyid') }},
            {{ json_str('payload', 'associations.companies.results[0].id') }}
        ) as company_remote_id,
        {{ json_str('payload', 'properties.address') }} as street,
        {{ json_str('payload', 'properties.city') }} as city,
        {{ json_str('payload', 'properties.state') }} as state,
        {{ json_str('payload', 'properties.zip') }} as postal_code,
        {{ json_str('payload', 'properties.country') }} as country,
        {{ iso_ts(json_str('payload', 'properties.notes_last_updated')) }} as last_activity_at
    from source
)

select * from unpacked
