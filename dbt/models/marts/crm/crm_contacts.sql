-- Incremental (delete+insert by the canonical id): a run recomputes only the rows whose staging rows changed
-- since the mart last saw their connection (union_canonical, macros/canonical.sql).
{{ config(materialized='incremental', unique_key='contact_id', incremental_strategy='delete+insert',
          on_schema_change='fail') }}

{{ union_canonical('crm_contacts', [
    'hubspot',
    'salesforce',
    'pipedrive',
]) }}
