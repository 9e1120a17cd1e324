-- Lever's custom questions (the forms on posting applications: applications[].customQuestions[].fields[]),
-- one row per question field. Lever has no org-wide list of them, but every form describes its fields (id,
-- type, text, options) with their values, so the definitions are read from the opportunities themselves.
-- `field_name`, the key canonical `custom_fields` use (dbt/macros/custom_fields.sql), is the snake_case of the
-- question's text as first loaded (Lever lets admins edit the text; the id stays), made unique per
-- connection with the id's first 8 characters; `label` is the latest text. remote_type is the decoding the
-- value needs: dates are epoch milliseconds (`date_ms`), currencies `{currency, value}` (`monetary`);
-- choices already carry the options' texts.
{% set raw = source('lever', 'opportunities') %}
{% set existing = raw_exists(raw) %}
with questions as (
    {%- if not existing %}
    {#- Lever was never synced here: no questions (the columns as below). #}
    select cast(null as varchar) as connection_id, cast(null as timestamptz) as extracted_at,
           cast(null as varchar) as _dlt_load_id, cast(null as varchar) as remote_key,
           cast(null as varchar) as label, cast(null as varchar) as lever_type
    where false
    {%- else %}
    select
        r.connection_id,
        r.extracted_at,
        r._dlt_load_id,
        {{ json_str('q.field', 'id') }} as remote_key,
        {{ json_str('q.field', 'text') }} as label,
        {{ json_str('q.field', 'type') }} as lever_type
    from {{ raw }} as r, {{ lever_question_fields('r.payload') }}
    {%- endif %}
),

ranked as (
    select
        *,
        row_number() over (partition by connection_id, remote_key order by extracted_at, _dlt_load_id) as first_n,
        row_number() over (partition by connection_id, remote_key
                           order by extracted_at desc, _dlt_load_id desc) as last_n
    from questions
),

definitions as (
    select
        connection_id,
        remote_key,
        max(case when last_n = 1 then label end) as label,
        max(case when last_n = 1 then lever_type end) as lever_type,
        {{ snake_name("max(case when first_n = 1 then label end)") }} as first_name
    from ranked
    group by connection_id, remote_key
),

types as (
    select provider_value, canonical_value from {{ ref('map_custom_field__type') }} where provider = 'lever'
)

select
    d.connection_id,
    'application' as entity,
    d.remote_key,
    d.label,
    case d.lever_type when 'date' then 'date_ms' when 'currency' then 'monetary' else d.lever_type end as remote_type,
    coalesce(t.canonical_value, 'unknown') as type,
    case when count(*) over (partition by d.connection_id, d.first_name) > 1
         then d.first_name || '_' || left(d.remote_key, 8) else d.first_name end as field_name,
    cast(null as varchar) as options_map
from definitions as d
left join types as t on t.provider_value = d.lever_type
