-- Incremental: only records with new raw rows are recomputed (macros/incremental.sql).
{{ config(materialized='incremental', unique_key=['connection_id', 'remote_id'],
          incremental_strategy='delete+insert', on_schema_change='fail') }}

with source as (
    {{ latest_raw_incremental(source('hubspot', 'companies')) }}
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
        {{ json_str('payload', 'properties.name') }} as name,
        {{ json_str('payload', 'properties.domain') }} as domain,
        {{ json_str('payload', 'properties.industry') }} as industry,
        try_cast({{ json_str('payload', 'properties.numberofemployees') }} as integer) as number_of_employees,
        {{ json_str('payload', 'properties.phone') }} as phone,
        {{ json_str('payload', 'properties.description') }} as description,
        {{ json_str('payload', 'properties.hubspot_owner_id') }} as owner_remote_id,
        {{ json_str('payload', 'properties.address') }} as street,
        {{ json_str('payload', 'properties.city') }} as city,
        {{ json_str('payload', 'properties.state') }} as state,
        {{ json_str('payload', 'properties.zip') }} as postal_code,
        {{ json_str('payload', 'properties.country') }} as country,
        {{ iso_ts(json_str('payload', 'properties.notes_last_updated')) }} as last_activity_at
    from source
)

select * from unpacked
