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
              from jsonb_array_elements({{ column }}::jsonb) with ordinality as t(e, n)
              {%- if not key %} where jsonb_typeof(e) <> 'null'{% endif %}), '[]'::jsonb)
{%- endmacro %}

{# A posting's office ids: canonical ids of 'location:<name>' for its location and every one of allLocations,
   distinct, sorted by that key. #}
{% macro lever_office_ids(connection_col, location_col, all_locations_col) -%}
    {{ return(adapter.dispatch('lever_office_ids', 'canonry')(connection_col, location_col, all_locations_col)) }}
{%- endmacro %}
{% macro duckdb__lever_office_ids(connection_col, location_col, all_locations_col) -%}
    to_json(list_transform(list_sort(list_transform(
        list_distinct(list_filter(list_concat([{{ location_col }}], coalesce(from_json({{ all_locations_col }}, '["VARCHAR"]'), [])),
                                  lambda x: x is not null)),
        lambda x: 'location:' || x)), lambda k: md5({{ connection_col }} || ':' || k)))
{%- endmacro %}
{% macro postgres__lever_office_ids(connection_col, location_col, all_locations_col) -%}
    coalesce((select jsonb_agg(md5({{ connection_col }} || ':' || k) order by k collate "C")
              from (select distinct 'location:' || x as k
                    from (select {{ location_col }} as x
                          union all
                          select jsonb_array_elements_text(cast({{ all_locations_col }} as jsonb))) as l
                    where x is not null) as d), '[]'::jsonb)
{%- endmacro %}
