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
