-- Incremental: only records with new raw rows are recomputed (macros/incremental.sql).
{{ config(materialized='incremental', unique_key=['connection_id', 'remote_id'],
          incremental_strategy='delete+insert', on_schema_change='fail') }}

{#- Every payload field this model reads: one JSON extraction per row (json_field, macros/canonical.sql). #}
{% set payload_paths = [
    'createdAt',
    'properties.dealname',
    'properties.description',
    'properties.amount',
    'properties.deal_currency_code',
    'properties.pipeline',
    'properties.dealstage',
    'properties.hubspot_owner_id',
    'associations.companies.results[0].id',
    'properties.closedate',
    'properties.notes_last_updated',
] %}

with source as (
    {{ latest_raw_incremental(source('hubspot', 'deals')) }}
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
        {{ json_field('payload', payload_paths, 'properties.dealname') }} as name,
        {{ json_field('payload', payload_paths, 'properties.description') }} as description,
        {{ safe_cast(json_field('payload', payload_paths, 'properties.amount'), 'decimal(18, 2)') }} as amount,
        {{ json_field('payload', payload_paths, 'properties.deal_currency_code') }} as currency,
        {{ json_field('payload', payload_paths, 'properties.pipeline') }} as pipeline_remote_id,
        {{ json_field('payload', payload_paths, 'properties.dealstage') }} as stage_remote_id,
        {{ json_field('payload', payload_paths, 'properties.hubspot_owner_id') }} as owner_remote_id,
        {{ json_field('payload', payload_paths, 'associations.companies.results[0].id') }} as company_remote_id,
        cast({{ iso_ts(json_field('payload', payload_paths, 'properties.closedate')) }} as date) as close_date,
        {{ iso_ts(json_field('payload', payload_paths, 'properties.notes_last_updated')) }} as last_activity_at,
        {{ json_part('payload', 'properties') }} as properties  -- custom properties (named in int models)
    from source
)

select * from unpacked
