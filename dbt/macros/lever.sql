{# Lever helpers (provider-specific, used only by models/staging|intermediate/lever). #}

{# The elements of a JSON array held whole in a column, with their 1-based position (json_items, portable.sql). #}
{% macro lever_json_items(column) -%}
    {{ json_items(column) }}
{%- endmacro %}

{# A JSON text array of strings -> JSON list of {value, type} with one fixed type. #}
{% macro lever_typed_strings(column, type_literal) -%}
    {{ return(adapter.dispatch('lever_typed_strings', 'canonry')(column, type_literal)) }}
{%- endmacro %}
{% macro duckdb__lever_typed_strings(column, type_literal) -%}
    to_json(list_transform(coalesce(from_json({{ column }}, '["VARCHAR"]'), []),
                           lambda v: {'value': v, 'type': '{{ type_literal }}'}))
{%- endmacro %}
{% macro postgres__lever_typed_strings(column, type_literal) -%}
    coalesce((select jsonb_agg(jsonb_build_object('value', v, 'type', '{{ type_literal }}') order by n)
              from jsonb_array_elements_text({{ column }}::jsonb) with ordinality as t(v, n)), '[]'::jsonb)
{%- endmacro %}

{# A JSON text array of provider ids -> JSON list of canonical ids (optionally the ids under `key`). #}
{% macro lever_fk_list(connection_col, column, key=none) -%}
    {{ return(adapter.dispatch('lever_fk_list', 'canonry')(connection_col, column, key)) }}
{%- endmacro %}
{% macro duckdb__lever_fk_list(connection_col, column, key) -%}
    {%- if key -%}
    to_json(list_transform(coalesce(from_json({{ column }}, '[{"{{ key }}": "VARCHAR"}]'), []),
                           lambda x: md5(cast({{ connection_col }} as varchar) || ':' || x.{{ key }})))
    {%- else -%}
    to_json(list_transform(list_filter(coalesce(from_json({{ column }}, '["VARCHAR"]'), []), lambda x: x is not null),
                           lambda x: md5(cast({{ connection_col }} as varchar) || ':' || x)))
    {%- endif -%}
{%- endmacro %}
{% macro postgres__lever_fk_list(connection_col, column, key) -%}
    coalesce((select jsonb_agg(md5(cast({{ connection_col }} as varchar) || ':' ||
                                   {% if key %}(e ->> '{{ key }}'){% else %}(e #>> '{}'){% endif %}) order by n)
              from jsonb_array_elements({{ column }}::jsonb) with ordinality as t(e, n)), '[]'::jsonb)
{%- endmacro %}
