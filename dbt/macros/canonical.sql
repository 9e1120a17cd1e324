{# Macros every provider's models share. No dbt hub packages here: these are ours. #}

{# The canonical id: a deterministic hash of connection_id ':' remote_id (canonical-model.md). #}
{% macro canonical_id(connection_col, remote_col) -%}
    md5(cast({{ connection_col }} as varchar) || ':' || cast({{ remote_col }} as varchar))
{%- endmacro %}

{# A canonical foreign key; null when the provider id is null or empty. #}
{% macro canonical_fk(connection_col, remote_col) -%}
    case when nullif(cast({{ remote_col }} as varchar), '') is not null
         then {{ canonical_id(connection_col, remote_col) }} end
{%- endmacro %}

{# Whether a raw table exists, asked of the catalog itself. Not adapter.get_relation: a raw schema is not a
   model schema, so dbt lists it on first use and marks it cached at the *first* relation it adds while that
   thread is still adding the rest (dbt-adapters RelationsCache._setdefault); a model compiling in another
   thread then saw a partial list and compiled to no rows (seen under load: Lever interviews missing). #}
{% macro raw_exists(relation) -%}
    {%- if not execute -%}{{ return(true) }}{%- endif -%}
    {%- set found = run_query("select 1 from information_schema.tables where lower(table_schema) = '"
                              ~ relation.schema | lower ~ "' and lower(table_name) = '"
                              ~ relation.identifier | lower ~ "'"
                              ~ (" and lower(table_catalog) = '" ~ relation.database | lower ~ "'"
                                 if relation.database else "")) -%}
    {{ return(found.rows | length > 0) }}
{%- endmacro %}

{# Latest version of every record in a raw table (append-only, one row per version seen);
   `where` optionally narrows the versions considered (e.g. 'not is_deleted'). #}
{% macro latest_raw(relation, where=none) -%}
    {%- set existing = raw_exists(relation) -%}
    {%- if not existing -%}
    {# The provider was never synced here: contribute no rows (raw columns are fixed by contract). #}
    select cast(null as varchar) as connection_id, cast(null as varchar) as remote_id,
           cast(null as timestamptz) as remote_updated_at, cast(null as boolean) as is_deleted,
           cast(null as varchar) as payload, cast(null as timestamptz) as extracted_at,
           cast(null as varchar) as _dlt_load_id
    where false
    {%- else -%}
    {%- set from_where -%}
    from {{ relation }}
    {% if where %}where {{ where }}{% endif %}
    {%- endset %}
    {{ latest_per_key('*', from_where, 'remote_updated_at desc nulls last, is_deleted desc, _dlt_load_id desc') }}
    {%- endif -%}
{%- endmacro %}

{# A string at a JSON path ('a.b.c') of a JSON text column. #}
{% macro json_str(column, path) -%}
    {{ return(adapter.dispatch('json_str', 'canonry')(column, path)) }}
{%- endmacro %}
{% macro duckdb__json_str(column, path) -%}
    json_extract_string({{ column }}, '$.{{ path }}')
{%- endmacro %}
{% macro postgres__json_str(column, path) -%}
    ({{ column }}::jsonb #>> '{{ pg_json_path(path) }}')
{%- endmacro %}

{# A string at a JSON path, for models that read many fields of one JSON column: `paths` lists every path
   the model reads (set once at its top). DuckDB re-parses the text for every json_extract_string; here
   every field is picked by position from ONE extraction of the whole list (identical expressions are
   computed once per row by DuckDB's common-subexpression elimination): ~3x faster staging at 100k rows.
   Other adapters read the path directly. #}
{% macro json_field(column, paths, path) -%}
    {%- if path not in paths -%}
        {{ exceptions.raise_compiler_error("json_field: '" ~ path ~ "' is not in the model's list of paths") }}
    {%- endif -%}
    {{ return(adapter.dispatch('json_field', 'canonry')(column, paths, path)) }}
{%- endmacro %}
{% macro duckdb__json_field(column, paths, path) -%}
    json_extract_string({{ column }}, [{% for p in paths %}'$.{{ p }}'{% if not loop.last %}, {% endif %}{% endfor %}])[{{ paths.index(path) + 1 }}]
{%- endmacro %}
{% macro default__json_field(column, paths, path) -%}
    {{ json_str(column, path) }}
{%- endmacro %}

{# 'a.b[0].c' -> PostgreSQL's text-array path '{a,b,0,c}'. #}
{% macro pg_json_path(path) -%}
    {{ "{" ~ path.replace("[", ".").replace("]", "").split(".") | join(",") ~ "}" }}
{%- endmacro %}

{# A JSON value (object/array) at a path, as JSON text. #}
{% macro json_part(column, path) -%}
    {{ return(adapter.dispatch('json_part', 'canonry')(column, path)) }}
{%- endmacro %}
{% macro duckdb__json_part(column, path) -%}
    json_extract({{ column }}, '$.{{ path }}')
{%- endmacro %}
{% macro postgres__json_part(column, path) -%}
    ({{ column }}::jsonb #> '{{ pg_json_path(path) }}')
{%- endmacro %}

{# A JSON list of {value, type} holding one value (or empty when the value is null). #}
{% macro typed_value_list(value_expr, type_literal) -%}
    {{ return(adapter.dispatch('typed_value_list', 'canonry')(value_expr, type_literal)) }}
{%- endmacro %}
{% macro duckdb__typed_value_list(value_expr, type_literal) -%}
    case when nullif({{ value_expr }}, '') is null then '[]'::json
         else to_json([{'value': {{ value_expr }}, 'type': '{{ type_literal }}'}]) end
{%- endmacro %}
{% macro postgres__typed_value_list(value_expr, type_literal) -%}
    case when nullif({{ value_expr }}, '') is null then '[]'::jsonb
         else jsonb_build_array(jsonb_build_object('value', {{ value_expr }}, 'type', '{{ type_literal }}')) end
{%- endmacro %}

{# One row per element of a JSON array at a path (use in a select list). #}
{% macro json_array_items(column, path) -%}
    {{ return(adapter.dispatch('json_array_items', 'canonry')(column, path)) }}
{%- endmacro %}
{% macro duckdb__json_array_items(column, path) -%}
    unnest(json_extract({{ column }}, '$.{{ path }}[*]'))
{%- endmacro %}
{% macro postgres__json_array_items(column, path) -%}
    jsonb_array_elements({{ column }}::jsonb #> '{{ pg_json_path(path) }}')
{%- endmacro %}

{# JSON text -> the warehouse's JSON type. #}
{% macro to_json_type(expr) -%}
    {{ return(adapter.dispatch('to_json_type', 'canonry')(expr)) }}
{%- endmacro %}
{% macro duckdb__to_json_type(expr) -%} cast({{ expr }} as json) {%- endmacro %}
{% macro postgres__to_json_type(expr) -%} cast({{ expr }} as jsonb) {%- endmacro %}

{# ISO-8601 text (or null/empty) -> timestamp with time zone. #}
{% macro iso_ts(expr) -%}
    cast(nullif({{ expr }}, '') as timestamptz)
{%- endmacro %}

{# The standard columns every canonical row carries, from a staging relation aliased `s` and the
   connections table aliased `c`. #}
{# `deleted_at_expr` (optional): providers that learn of deletes other than by a record's own update
   (Greenhouse key scans) pass their staging's deletion time. #}
{% macro standard_columns(provider, custom_fields_expr="'{}'", deleted_at_expr=none) -%}
    '{{ provider }}' as provider,
    s.connection_id,
    c.tenant_id,
    s.remote_id,
    s.remote_created_at,
    s.remote_updated_at,
    s.is_deleted,
    {{ deleted_at_expr if deleted_at_expr else 'case when s.is_deleted then s.remote_updated_at end' }} as deleted_at,
    s.extracted_at as last_synced_at,
    {{ to_json_type(custom_fields_expr) }} as custom_fields,
    s._load_id
{%- endmacro %}

{# Union every provider's conformed model for one canonical table, in contract column order.

   Incremental marts (benchmarks/README.md, tuning item 14): in a model configured
       config(materialized='incremental', unique_key='<canonical id column>',
              incremental_strategy='delete+insert', on_schema_change='fail')
   an incremental run selects, per provider, only the rows that can differ from what the mart holds, and
   dbt replaces those keys. A row of int_<provider>__<table> is a function of its staging row (whose
   `_load_id` is the raw load of the version chosen), of the connection's tenant (ops.connections) and of
   the `lookups` (below). A staging row changes only when a version loaded later wins, so it then carries a
   load id newer than any load of its connection that the mart has seen (a connection's loads are made one
   after the other, in load-id order; a package of the same connection loaded out of that order is picked
   up by the next --full-refresh, as in incremental staging). The watermark is therefore kept
   **per connection** (max `_load_id` of that connection's rows in the mart), never one global load id:
     - a connection (or a whole provider) the mart holds no rows of contributes every row: a provider whose
       models are built for the first time after the mart exists, or whose loads are older than another
       provider's, still arrives whole;
     - a connection whose rows carry a tenant other than ops.connections' (changed or removed connection)
       is recomputed whole;
     - deletes are rows (`is_deleted`) with a new load id, like updates.
   `lookups` ({provider: [(fk_column, staging_model, [derived columns])]}) names the other staging models a
   provider's rows read (e.g. deal stages) and the contract columns computed from them besides the fk (e.g.
   status): canonical_lookup_changes adds the keys whose fk or derived columns differ from the mart's row
   because of a lookup row loaded after the watermark (HubSpot re-delivers every pipeline at every sync,
   so "loaded again" is not "changed"). An int model that starts reading another staging model, or derives
   another column from a lookup, must say so here (or be built with --full-refresh).
   The first run, --full-refresh and a table (non-incremental) mart build the whole union, as before. #}
{% macro union_canonical(table, providers, lookups={}) -%}
    {#- A lineage build (canonry.transform.lineage_selection: one provider's sync) rebuilds the marts without
        building every provider's models; a provider whose intermediate model was never built has fed
        nothing yet, so it is left out of the union instead of failing the mart. -#}
    {%- set key = var('canonical_columns')[table][0] -%}
    {%- set connections = source('canonry_ops', 'connections') -%}
    {%- set parts = [] -%}
    {%- for provider in providers -%}
        {%- set relation = ref('int_' ~ provider ~ '__' ~ table) -%}
        {%- set provider_lookups = [] -%}
        {%- for column, model, derived in lookups.get(provider, []) -%}
            {%- do provider_lookups.append((column, ref(model), derived)) -%}
        {%- endfor -%}
        {%- if not execute or load_relation(relation) is not none -%}
            {%- do parts.append((provider, relation, provider_lookups)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set incremental = execute and is_incremental() -%}
    {%- set marks = canonical_marks(connections) if incremental else {} -%}
    {#- On PostgreSQL, text and money columns are cast to their contract type (the marts' yml, rendered from
        canonry/canonical.py): staging yields `character varying` / unconstrained `numeric` where the contract
        (and so the table) says `text` / `numeric(18,2)`, and an incremental run's rows would then differ in type
        from the table (on_schema_change=fail stops it). Only these spellings are harmonised, so a real type
        change in the contract still fails the build with dbt's contract error. -#}
    {%- set union_sql -%}
    {% if parts | length == 0 %}
    {% if incremental %}
    {# Nothing feeds it in this run: change nothing (the table keeps its column types). #}
    select * from {{ this }} where 1 = 0
    {% else %}
    {# No provider feeds this table yet: an empty relation with the contract's columns and types. #}
    select {% for column in var('canonical_columns')[table] %}cast(null as {{ model.columns.get(column, {}).get('data_type') or 'varchar' }}) as {{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
    where false
    {% endif %}
    {% endif %}
    {% for provider, relation, provider_lookups in parts %}
    {% if incremental %}
    {%- set known = marks.get(provider, {}) %}
    {%- set extra = canonical_lookup_changes(table, provider, relation, provider_lookups, known) %}
    select i.* from {{ relation }} as i
    where {{ canonical_changed('i', known) }}
    {%- if extra is none %}
       or (1 = 1)
    {%- elif extra %}
       or i.{{ key }} in ({% for k in extra %}'{{ k }}'{% if not loop.last %}, {% endif %}{% endfor %})
    {%- endif %}
    {% else %}
    select * from {{ relation }}
    {% endif %}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
    {%- endset %}
    {%- if target.type == 'postgres' %}
    select {% for column in var('canonical_columns')[table] -%}
        {%- set contract_type = model.columns.get(column, {}).get('data_type') -%}
        {%- if contract_type in ('text', 'numeric(18,2)') -%}
        cast({{ column }} as {{ contract_type }}) as {{ column }}
        {%- else -%}
        {{ column }}
        {%- endif -%}
        {%- if not loop.last %}, {% endif %}
    {%- endfor %}
    from (
    {{ union_sql }}
    ) as canonical_union
    {%- else %}
    {{ union_sql }}
    {%- endif %}
{%- endmacro %}

{# Keys of a provider's rows that a changed lookup row (loaded after the watermark) can alter: rows whose fk
   points, now (int view) or before (mart), to such a lookup row and whose fk or derived columns differ from
   the mart's row (only those columns are computed: cheap beside comparing whole rows). [] when none or
   when the mart knows none of the provider's connections (every row is recomputed anyway); none (recompute
   the provider whole) when more than 10,000. Run at compile time so that the model's filter stays a
   constant one the warehouse pushes down to the staging scan. #}
{% macro canonical_lookup_changes(table, provider, relation, lookups, known) -%}
    {%- if not lookups or not known -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set key = var('canonical_columns')[table][0] -%}
    {%- set compared = [] -%}
    {%- for column, lookup, derived in lookups -%}
        {%- for c in [column] + derived if c not in compared -%}{%- do compared.append(c) -%}{%- endfor -%}
    {%- endfor -%}
    {%- set sql -%}
    select i.{{ key }}
    from {{ relation }} as i
    join {{ this }} as m on m.{{ key }} = i.{{ key }}
    where m.provider = '{{ provider }}'
      and ({% for column, lookup, derived in lookups %}{% if not loop.first %} or {% endif %}
           {%- set changed_ids -%}
           (select {{ canonical_id('l.connection_id', 'l.remote_id') }} from {{ lookup }} as l
            where {{ canonical_changed('l', known) }})
           {%- endset %}
           i.{{ column }} in {{ changed_ids }} or m.{{ column }} in {{ changed_ids }}{% endfor %})
      and ({% for column in compared %}{% if not loop.first %} or {% endif %}i.{{ column }} is distinct from m.{{ column }}{% endfor %})
    limit 10001
    {%- endset -%}
    {%- set keys = run_query(sql).columns[0].values() | list -%}
    {{ return(none if keys | length > 10000 else keys) }}
{%- endmacro %}

{# Per provider, per connection: the newest `_load_id` an incremental mart holds ({provider: {connection:
   load id}}). Connections whose rows disagree with ops.connections' tenant are left out (recomputed whole). #}
{% macro canonical_marks(connections) -%}
    {%- set sql -%}
    select m.provider, m.connection_id, max(m._load_id) as watermark
    from {{ this }} as m
    left join {{ connections }} as c on c.connection_id = m.connection_id
    group by m.provider, m.connection_id
    having not bool_or(m.tenant_id is distinct from c.tenant_id) and max(m._load_id) is not null
    {%- endset -%}
    {%- set marks = {} -%}
    {%- for row in run_query(sql) -%}
        {%- do marks.setdefault(row[0], {}).update({row[1]: row[2]}) -%}
    {%- endfor -%}
    {{ return(marks) }}
{%- endmacro %}

{# Rows (of a relation aliased `alias` with connection_id and `load_column`) loaded after the mart's watermark of
   their connection, or of a connection the mart does not know (`known`: {connection: load id}). #}
{% macro canonical_changed(alias, known, load_column='_load_id') -%}
    {%- if known -%}
    ({{ alias }}.connection_id not in ({% for c in known %}'{{ c | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor %})
    {%- for c, watermark in known.items() %}
     or ({{ alias }}.connection_id = '{{ c | replace("'", "''") }}' and {{ alias }}.{{ load_column }} > '{{ watermark | replace("'", "''") }}')
    {%- endfor %})
    {%- else -%}
    (1 = 1)
    {%- endif -%}
{%- endmacro %}

{# Map a provider value to a canonical enum through a seed; unmapped values become OTHER. #}
{% macro map_value(seed, provider, value_expr, alias) -%}
    coalesce(
        (select m.canonical_value from {{ ref(seed) }} m
         where m.provider = '{{ provider }}' and lower(m.provider_value) = lower(cast({{ value_expr }} as varchar))),
        'OTHER') as {{ alias }}
{%- endmacro %}

{# A JSON list holding one address {street_1, street_2, city, state, postal_code, country, type}, or empty. #}
{% macro address_list(street_1, street_2, city, state, postal_code, country, type_literal) -%}
    {{ return(adapter.dispatch('address_list', 'canonry')(street_1, street_2, city, state, postal_code, country, type_literal)) }}
{%- endmacro %}
{% macro duckdb__address_list(street_1, street_2, city, state, postal_code, country, type_literal) -%}
    case when coalesce({{ street_1 }}, {{ city }}, {{ postal_code }}, {{ country }}) is null then '[]'::json
         else to_json([{'street_1': {{ street_1 }}, 'street_2': {{ street_2 }}, 'city': {{ city }},
                        'state': {{ state }}, 'postal_code': {{ postal_code }}, 'country': {{ country }},
                        'type': '{{ type_literal }}'}]) end
{%- endmacro %}
{% macro postgres__address_list(street_1, street_2, city, state, postal_code, country, type_literal) -%}
    case when coalesce({{ street_1 }}, {{ city }}, {{ postal_code }}, {{ country }}) is null then '[]'::jsonb
         else jsonb_build_array(jsonb_build_object('street_1', {{ street_1 }}, 'street_2', {{ street_2 }},
              'city', {{ city }}, 'state', {{ state }}, 'postal_code', {{ postal_code }},
              'country', {{ country }}, 'type', '{{ type_literal }}')) end
{%- endmacro %}

{# A JSON list of canonical ids from a JSON array of provider ids at a path (e.g. associated contacts). #}
{% macro canonical_id_list(connection_col, column, path) -%}
    {{ return(adapter.dispatch('canonical_id_list', 'canonry')(connection_col, column, path)) }}
{%- endmacro %}
{% macro duckdb__canonical_id_list(connection_col, column, path) -%}
    to_json(coalesce(list_transform(json_extract_string({{ column }}, '${{ "" if path.startswith("[") else "." }}{{ path }}'),
                                    lambda x: md5(cast({{ connection_col }} as varchar) || ':' || x)), []))
{%- endmacro %}
{% macro postgres__canonical_id_list(connection_col, column, path) -%}
    coalesce((select jsonb_agg(md5(cast({{ connection_col }} as varchar) || ':' || (e #>> '{}')))
              from jsonb_path_query({{ column }}::jsonb, '${{ "" if path.startswith("[") else "." }}{{ path }}') as e), '[]'::jsonb)
{%- endmacro %}

{# Latest version of every record, but when that version is a deletion, its attributes (payload) come
   from the last version before it: some providers' delete feeds carry little or a different shape. #}
{% macro latest_raw_keep_attributes(relation) -%}
    {%- set existing = raw_exists(relation) -%}
    {%- if not existing -%}
    {{ latest_raw(relation) }}
    {%- else -%}
    select l.connection_id, l.remote_id, l.remote_updated_at, l.is_deleted,
           case when l.is_deleted then coalesce(a.payload, l.payload) else l.payload end as payload,
           l.extracted_at, l._dlt_load_id
    from ({{ latest_raw(relation) }}) as l
    left join (
        {{ latest_per_key('connection_id, remote_id, payload', 'from ' ~ relation ~ ' where not is_deleted',
                          'remote_updated_at desc nulls last, _dlt_load_id desc') }}
    ) as a on a.connection_id = l.connection_id and a.remote_id = l.remote_id
    {%- endif -%}
{%- endmacro %}

{# `YYYY-MM-DD HH:MM:SS` text that is UTC without saying so (Pipedrive v1) -> timestamp with time zone. #}
{% macro utc_text_ts(expr) -%}
    cast(nullif({{ expr }}, '') || '+00:00' as timestamptz)
{%- endmacro %}

{# A JSON list holding the canonical id of one provider id (or empty when it is null). #}
{% macro canonical_id_singleton_list(connection_col, remote_col) -%}
    {{ return(adapter.dispatch('canonical_id_singleton_list', 'canonry')(connection_col, remote_col)) }}
{%- endmacro %}
{% macro duckdb__canonical_id_singleton_list(connection_col, remote_col) -%}
    case when nullif(cast({{ remote_col }} as varchar), '') is null then '[]'::json
         else to_json([{{ canonical_id(connection_col, remote_col) }}]) end
{%- endmacro %}
{% macro postgres__canonical_id_singleton_list(connection_col, remote_col) -%}
    case when nullif(cast({{ remote_col }} as varchar), '') is null then '[]'::jsonb
         else jsonb_build_array({{ canonical_id(connection_col, remote_col) }}) end
{%- endmacro %}

{# Every version in a raw table (or no rows when the provider was never synced here). #}
{% macro raw_versions(relation) -%}
    {%- set existing = raw_exists(relation) -%}
    {%- if not existing -%}
    select cast(null as varchar) as connection_id, cast(null as varchar) as remote_id,
           cast(null as timestamptz) as remote_updated_at, cast(null as boolean) as is_deleted,
           cast(null as varchar) as payload, cast(null as timestamptz) as extracted_at,
           cast(null as varchar) as _dlt_load_id
    where false
    {%- else -%}
    select * from {{ relation }}
    {%- endif -%}
{%- endmacro %}

{# Epoch milliseconds (number or numeric text, null/empty allowed) -> timestamp with time zone (Lever). #}
{% macro epoch_ms_ts(expr) -%}
    to_timestamp(cast(nullif(cast({{ expr }} as varchar), '') as bigint) / 1000.0)
{%- endmacro %}
