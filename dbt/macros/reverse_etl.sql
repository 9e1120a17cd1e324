{# The `value` of the first item of a canonical JSON list column (emails, phones): [{value, type}, ...]. #}
{% macro first_list_value(column) -%}
    {{ return(adapter.dispatch('first_list_value', 'canonry')(column)) }}
{%- endmacro %}
{% macro duckdb__first_list_value(column) -%}
    json_extract_string({{ column }}, '$[0].value')
{%- endmacro %}
{% macro postgres__first_list_value(column) -%}
    ({{ column }}::jsonb #>> '{0,value}')
{%- endmacro %}

{#
  Cross-provider: every candidate an ATS hired, as a person of the CRM `crm` (hubspot | salesforce |
  pipedrive) of the same tenant, one row per (candidate, CRM connection), matched in the CRM by email (the
  sync's natural key: HubSpot upserts by it, Salesforce and Pipedrive look it up before writing), with the
  title of the job they were hired for. One model per CRM selects it: rev_<crm>__<object>_from_hires.
#}
{% macro hires_as_crm_people(crm) -%}
with hires as (
    select a.candidate_id, max(j.name) as job_name
    from {{ ref('ats_applications') }} as a
    left join {{ ref('ats_jobs') }} as j on j.job_id = a.job_id
    where a.status = 'HIRED' and not a.is_deleted
    group by a.candidate_id
),

crm as (
    select connection_id, tenant_id from {{ source('canonry_ops', 'connections') }} where provider = '{{ crm }}'
)

select
    c.candidate_id as record_key,
    crm.connection_id,
    cast(null as varchar) as external_id,
    lower({{ first_list_value('c.emails') }}) as email,
    c.first_name,
    c.last_name,
    trim(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, '')) as full_name,
    hires.job_name as job_title
from hires
inner join {{ ref('ats_candidates') }} as c on c.candidate_id = hires.candidate_id
inner join crm on crm.tenant_id = c.tenant_id
where not c.is_deleted and {{ first_list_value('c.emails') }} is not null
{%- endmacro %}
