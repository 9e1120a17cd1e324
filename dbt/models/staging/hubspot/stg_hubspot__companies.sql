-- Incremental: only records with new raw rows are recomputed (macros/incremental.sql).
{{ config(materialized='incremental', unique_key=['connection_id', 'remote_id'],
          incremental_strategy='delete+insert', on_schema_change='fail') }}

{#- Every payload field this model reads: one JSON extraction per row (json_field, macros/canonical.sql). #}
{% set payload_paths = [
    'createdAt',
    'properties.name',
    'properties.domain',
    'properties.industry',
    'properties.numberofemployees',
    'properties.phone',
    'properties.description',
    'properties.hubspot_owner_id',
    'properties.address',
    'properties.city',
    'properties.state',
    'properties.zip',
    'properties.country',
    'properties.notes_last_updated',
] %}

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
        {{ iso_ts(json_field('payload', payload_paths, 'createdAt')) }} as remote_created_at,
        {{ json_field('payload', payload_paths, 'properties.name') }} as name,
        {{ json_field('payload', payload_paths, 'properties.domain') }} as domain,
        {{ json_field('payload', payload_paths, 'properties.industry') }} as industry,
        {{ safe_cast(json_field('payload', payload_paths, 'properties.numberofemployees'), 'integer') }} as number_of_employees,
        {{ json_field('payload', payload_paths, 'properties.phone') }} as phone,
        {{ json_field('payload', payload_paths, 'properties.description') }} as description,
        {{ json_field('payload', payload_paths, 'properties.hubspot_owner_id') }} as owner_remote_id,
        {{ json_field('payload', payload_paths, 'properties.address') }} as street,
        {{ json_field('payload', payload_paths, 'properties.city') }} as city,
        {{ json_field('payload', payload_paths, 'properties.state') }} as state,
        {{ json_field('payload', payload_paths, 'properties.zip') }} as postal_code,
        {{ json_field('payload', payload_paths, 'properties.country') }} as country,
        {{ iso_ts(json_field('payload', payload_paths, 'properties.notes_last_updated')) }} as last_activity_at,
        {{ json_part('payload', 'properties') }} as properties  -- custom properties (named in int models)
    from source
)

select * from unpacked
