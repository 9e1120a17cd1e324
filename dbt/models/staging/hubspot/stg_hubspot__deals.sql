-- Incremental: only records with new raw rows are recomputed (macros/incremental.sql).
{{ config(materialized='incremental', unique_key=['connection_id', 'remote_id'],
          incremental_strategy='delete+insert', on_schema_change='fail') }}

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
        {{ iso_ts(json_str('payload', 'createdAt')) }} as remote_created_at,
        {{ json_str('payload', 'properties.dealname') }} as name,
        {{ json_str('payload', 'properties.description') }} as description,
        try_cast({{ json_str('payload', 'properties.amount') }} as decimal(18, 2)) as amount,
        {{ json_str('payload', 'properties.deal_currency_code') }} as currency,
        {{ json_str('payload', 'properties.pipeline') }} as pipeline_remote_id,
        {{ json_str('payload', 'properties.dealstage') }} as stage_remote_id,
        {{ json_str('payload', 'properties.hubspot_owner_id') }} as owner_remote_id,
        {{ json_str('payload', 'associations.companies.results[0].id') }} as company_remote_id,
        cast({{ iso_ts(json_str('payload', 'properties.closedate')) }} as date) as close_date,
        {{ iso_ts(json_str('payload', 'properties.notes_last_updated')) }} as last_activity_at
    from source
)

select * from unpacked
