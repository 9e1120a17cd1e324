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
{% macro latest_per_key(columns, from_where, order_by, prefix='', keys=none) -%}
    {%- set keys = keys or [prefix ~ 'connection_id', prefix ~ 'remote_id'] -%}
    {{ return(adapter.dispatch('latest_per_key', 'canonry')(columns, from_where, order_by, keys | join(', '))) }}
{%- endmacro %}
{% macro duckdb__latest_per_key(columns, from_where, order_by, keys) -%}
    select {{ columns }}
    {{ from_where }}
    qualify row_number() over (
        partition by {{ keys }}
        order by {{ order_by }}
    ) = 1
{%- endmacro %}
{% macro postgres__latest_per_key(columns, from_where, order_by, keys) -%}
    select distinct on ({{ keys }}) {{ columns }}
    {{ from_where }}
    order by {{ keys }}, {{ order_by }}
{%- endmacro %}

{# A JSON list made from each element of the JSON array in `column` (null/empty -> '[]'), in order.
   `fields`: the element's fields when the elements are objects (read as `item.<field>`, text), or none when
   they are strings (read as `item`). `out`: a list of (key, expression) pairs -> a list of objects, or
   one expression -> a list of values. The same expressions run on both adapters: DuckDB reads the array
   with from_json into structs and maps a lambda named `item`; PostgreSQL reads it with
   jsonb_to_recordset / jsonb_array_elements_text aliased `item`. #}
{% macro json_map(column, fields, out) -%}
    {{ return(adapter.dispatch('json_map', 'canonry')(column, fields, out)) }}
{%- endmacro %}
{% macro duckdb__json_map(column, fields, out) -%}
    {%- set parts = [] -%}
    {%- for f in fields or [] %}{% do parts.append('"' ~ f ~ '": "VARCHAR"') %}{% endfor -%}
    {%- set schema = '["VARCHAR"]' if fields is none else '[{' ~ parts | join(', ') ~ '}]' -%}
    coalesce(to_json(list_transform(from_json({{ column }}, '{{ schema }}'), lambda item:
        {%- if out is string %} {{ out }}
        {%- else %} { {%- for key, expr in out %}'{{ key }}': {{ expr }}{% if not loop.last %}, {% endif %}{% endfor -%} }
        {%- endif %})), '[]'::json)
{%- endmacro %}
{% macro postgres__json_map(column, fields, out) -%}
    coalesce((select jsonb_agg(
        {%- if out is string %}{{ out }}
        {%- else %}jsonb_build_object({% for key, expr in out %}'{{ key }}', {{ expr }}{% if not loop.last %}, {% endif %}{% endfor %})
        {%- endif %} order by item_ord)
        {%- if fields is none %}
        from jsonb_array_elements_text(cast({{ column }} as jsonb)) with ordinality as t(item, item_ord)
        {%- else %}
        from rows from (jsonb_to_recordset(cast({{ column }} as jsonb))
                        as ({% for f in fields %}{{ f }} text{% if not loop.last %}, {% endif %}{% endfor %}))
             with ordinality as item({% for f in fields %}{{ f }}, {% endfor %}item_ord)
        {%- endif %}), '[]'::jsonb)
{%- endmacro %}

{# Two JSON lists, one after the other. #}
{% macro json_concat(left, right) -%}
    {{ return(adapter.dispatch('json_concat', 'canonry')(left, right)) }}
{%- endmacro %}
{% macro duckdb__json_concat(left, right) -%}
    to_json(list_concat(json_extract({{ left }}, '$[*]'), json_extract({{ right }}, '$[*]')))
{%- endmacro %}
{% macro postgres__json_concat(left, right) -%}
    (cast({{ left }} as jsonb) || cast({{ right }} as jsonb))
{%- endmacro %}

{# An aggregate: a JSON list of objects from (key, expression) pairs, ordered by `order_by`. #}
{% macro json_agg_objects(pairs, order_by, filter=none) -%}
    {{ return(adapter.dispatch('json_agg_objects', 'canonry')(pairs, order_by, filter)) }}
{%- endmacro %}
{% macro duckdb__json_agg_objects(pairs, order_by, filter) -%}
    to_json(list({ {%- for key, expr in pairs %}'{{ key }}': {{ expr }}{% if not loop.last %}, {% endif %}{% endfor -%} } order by {{ order_by }})
            {%- if filter %} filter (where {{ filter }}){% endif %})
{%- endmacro %}
{% macro postgres__json_agg_objects(pairs, order_by, filter) -%}
    jsonb_agg(jsonb_build_object({% for key, expr in pairs %}'{{ key }}', {{ expr }}{% if not loop.last %}, {% endif %}{% endfor %}) order by {{ order_by }})
    {%- if filter %} filter (where {{ filter }}){% endif %}
{%- endmacro %}

{# The elements of a JSON array held whole in a column (`item`, JSON), with their 1-based position
   (`item_position`): select-list set-returning functions, one row per element (none for null). #}
{% macro json_items(column) -%}
    {{ return(adapter.dispatch('json_items', 'canonry')(column)) }}
{%- endmacro %}
{% macro duckdb__json_items(column) -%}
    unnest(json_extract({{ column }}, '$[*]')) as item,
    unnest(range(1, cast(json_array_length({{ column }}) as bigint) + 1)) as item_position
{%- endmacro %}
{% macro postgres__json_items(column) -%}
    jsonb_array_elements({{ column }}::jsonb) as item,
    generate_series(1, jsonb_array_length({{ column }}::jsonb)) as item_position
{%- endmacro %}

{# A JSON list of the given expressions (a Jinja list of SQL expressions), nulls kept. #}
{% macro json_list_of(exprs) -%}
    {{ return(adapter.dispatch('json_list_of', 'canonry')(exprs)) }}
{%- endmacro %}
{% macro duckdb__json_list_of(exprs) -%} to_json([{{ exprs | join(', ') }}]) {%- endmacro %}
{% macro postgres__json_list_of(exprs) -%} jsonb_build_array({{ exprs | join(', ') }}) {%- endmacro %}

{# An aggregate: the distinct non-null values of `expr` (rows passing `filter`), sorted bytewise, as a JSON
   list; null when no row passes. #}
{% macro json_sorted_set(expr, filter='true') -%}
    {{ return(adapter.dispatch('json_sorted_set', 'canonry')(expr, filter)) }}
{%- endmacro %}
{% macro duckdb__json_sorted_set(expr, filter) -%}
    to_json(list_sort(list_distinct(list({{ expr }}) filter (where {{ filter }}))))
{%- endmacro %}
{% macro postgres__json_sorted_set(expr, filter) -%}
    to_jsonb(array_agg(distinct {{ expr }} collate "C" order by {{ expr }} collate "C") filter (where ({{ filter }}) and {{ expr }} is not null))
{%- endmacro %}
