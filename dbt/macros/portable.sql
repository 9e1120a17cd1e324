{# What DuckDB and PostgreSQL spell differently, behind adapter.dispatch: one model, two adapters.
   (JSON extraction and JSON lists live in canonical.sql beside the macros that use them.) #}

{# `expr` cast to `type` (integer, bigint, double, decimal(p, s)), null when it is not a number
   (DuckDB's try_cast; PostgreSQL 15 has none: a pattern check guards the cast). #}
{% macro safe_cast(expr, type) -%}
    {{ return(adapter.dispatch('safe_cast', 'canonry')(expr, type)) }}
{%- endmacro %}
{% macro duckdb__safe_cast(expr, type) -%}
    try_cast({{ expr }} as {{ type }})
{%- endmacro %}
{% macro postgres__safe_cast(expr, type) -%}
    {%- set integral = type | lower in ('integer', 'bigint', 'smallint') -%}
    {%- set pattern = '^\\s*[-+]?[0-9]+\\s*$' if integral else '^\\s*[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?\\s*$' -%}
    (case when cast({{ expr }} as text) ~ '{{ pattern }}'
          then cast(cast({{ expr }} as text) as {{ 'double precision' if type | lower == 'double' else type }}) end)
{%- endmacro %}

{# Milliseconds (a number) as an interval, to add to a timestamp. #}
{% macro ms_interval(expr) -%}
    {{ return(adapter.dispatch('ms_interval', 'canonry')(expr)) }}
{%- endmacro %}
{% macro duckdb__ms_interval(expr) -%} to_milliseconds({{ expr }}) {%- endmacro %}
{% macro postgres__ms_interval(expr) -%} ({{ expr }}) * interval '1 millisecond' {%- endmacro %}

{# The number of elements of a JSON array (JSON or JSON text). #}
{% macro json_length(expr) -%}
    {{ return(adapter.dispatch('json_length', 'canonry')(expr)) }}
{%- endmacro %}
{% macro duckdb__json_length(expr) -%} json_array_length({{ expr }}) {%- endmacro %}
{% macro postgres__json_length(expr) -%} jsonb_array_length(cast({{ expr }} as jsonb)) {%- endmacro %}

{# A table function: one row per string of a JSON array of strings (use as `from x, <this> as t(value)`). #}
{% macro json_strings(expr) -%}
    {{ return(adapter.dispatch('json_strings', 'canonry')(expr)) }}
{%- endmacro %}
{% macro duckdb__json_strings(expr) -%} unnest(from_json({{ expr }}, '["VARCHAR"]')) {%- endmacro %}
{% macro postgres__json_strings(expr) -%} jsonb_array_elements_text(cast({{ expr }} as jsonb)) {%- endmacro %}

{# The newest row per (connection_id, remote_id) of `from_where` (a FROM clause with its WHERE), ordered by
   `order_by`, selecting `columns` (column names prefixed with `prefix`, e.g. 'r.').
   DuckDB: QUALIFY row_number(); PostgreSQL: DISTINCT ON (what its planner does best). #}
{% macro latest_per_key(columns, from_where, order_by, prefix='') -%}
    {{ return(adapter.dispatch('latest_per_key', 'canonry')(columns, from_where, order_by, prefix)) }}
{%- endmacro %}
{% macro duckdb__latest_per_key(columns, from_where, order_by, prefix) -%}
    select {{ columns }}
    {{ from_where }}
    qualify row_number() over (
        partition by {{ prefix }}connection_id, {{ prefix }}remote_id
        order by {{ order_by }}
    ) = 1
{%- endmacro %}
{% macro postgres__latest_per_key(columns, from_where, order_by, prefix) -%}
    select distinct on ({{ prefix }}connection_id, {{ prefix }}remote_id) {{ columns }}
    {{ from_where }}
    order by {{ prefix }}connection_id, {{ prefix }}remote_id, {{ order_by }}
{%- endmacro %}
