{# Workable helpers (provider-specific, used only by models/staging|intermediate/workable). #}

{# The id of the last element of a JSON array at `path` (a job's own department ends its hierarchy). #}
{% macro workable_last_id(column, path) -%}
    {{ return(adapter.dispatch('workable_last_id', 'canonry')(column, path)) }}
{%- endmacro %}
{% macro duckdb__workable_last_id(column, path) -%}
    json_extract_string({{ column }}, '$.{{ path }}[#-1].id')
{%- endmacro %}
{% macro postgres__workable_last_id(column, path) -%}
    ({{ column }}::jsonb #>> '{ {{- path }},-1,id}')
{%- endmacro %}
