{# Custom fields, named (sources/pipedrive/README.md and sources/hubspot/README.md, "Custom fields"). Canonical `custom_fields` is a JSON
   object {field_name: {value, type, remote_key}}:
   - field_name: the stable key, snake_case of the field's name when Canonry first loaded its definition;
     a rename at the provider changes nothing in canonical rows (the current name is the `label` of
     stg_<provider>__custom_fields), so queries on field_name keep working and no row needs rebuilding;
   - type: the canonical kind (seed map_custom_field__type);
   - value: enum -> the option's label, multi_select -> list of labels, currency -> {amount, currency},
     user_reference -> the canonical user id (crm_users.user_id), others as the provider sends them;
   - a value whose key has no definition (definitions not synced, or a key written by reverse ETL) keeps
     its remote key as name, type `unknown`: nothing is dropped but empty values. #}

{# The first version of every record in a raw table (the counterpart of latest_raw). #}
{% macro first_raw(relation) -%}
    {%- set existing = raw_exists(relation) -%}
    {%- if not existing -%}
    {{ latest_raw(relation) }}
    {%- else -%}
    {#- A ranked subquery rather than QUALIFY: portable to PostgreSQL. #}
    select connection_id, remote_id, remote_updated_at, is_deleted, payload, extracted_at, _dlt_load_id
    from (
        select *, row_number() over (
            partition by connection_id, remote_id order by extracted_at, _dlt_load_id
        ) as _version
        from {{ relation }}
    ) as ranked
    where _version = 1
    {%- endif -%}
{%- endmacro %}

{# A readable identifier: lower case, runs of other characters as one underscore. #}
{% macro snake_name(expr) -%}
    {{ return(adapter.dispatch('snake_name', 'canonry')(expr)) }}
{%- endmacro %}
{% macro duckdb__snake_name(expr) -%}
    trim(regexp_replace(lower({{ expr }}), '[^a-z0-9]+', '_', 'g'), '_')
{%- endmacro %}
{% macro postgres__snake_name(expr) -%}
    trim(both '_' from regexp_replace(lower({{ expr }}), '[^a-z0-9]+', '_', 'g'))
{%- endmacro %}

{# {option key: label} of a definition whose payload lists `<list>: [{<key>, <label>}]` (Pipedrive: options/id,
   HubSpot: options/value, Salesforce: picklistValues/value). #}
{% macro options_map(payload, key='id', list='options', label='label') -%}
    {{ return(adapter.dispatch('options_map', 'canonry')(payload, key, list, label)) }}
{%- endmacro %}
{% macro duckdb__options_map(payload, key, list, label) -%}
    (select json_group_object(json_extract_string(o.value, '$.{{ key }}'), json_extract_string(o.value, '$.{{ label }}'))
     from json_each({{ payload }}, '$.{{ list }}') as o)
{%- endmacro %}
{% macro postgres__options_map(payload, key, list, label) -%}
    (select jsonb_object_agg(o ->> '{{ key }}', o ->> '{{ label }}')
     from jsonb_array_elements(coalesce({{ payload }}::jsonb -> '{{ list }}', '[]'::jsonb)) as o)
{%- endmacro %}

{# The named custom fields of a staging row aliased `s` (`values`: the provider's {remote key: value}
   object), with the definitions of `entity` from `definitions` (columns connection_id, entity, remote_key,
   label, remote_type, type, field_name, options_map). `only_defined`: keep only keys that have a
   definition (HubSpot, whose `properties` object mixes its own properties with custom ones).
   Value decoding by remote_type: Pipedrive enum (option id), set (list of ids), monetary
   ({value, currency}), user (user id); HubSpot (strings) select (option value), checkbox (values joined by
   `;`), currency, owner (owner id), number; Salesforce picklist (API value), multipicklist (API values
   joined by `;`), currency (a number), user (a User id); amount_unit (Greenhouse currency `{amount, unit}`),
   user_object (Greenhouse user `{user_id, …}`); Ashby ValueSelect (option value; a value that is no option's
   is kept as sent), MultiValueSelect (list of option values, likewise), CompensationRange ({min, max,
   currency, interval}); Lever date_ms (epoch milliseconds -> `YYYY-MM-DD`, UTC); any other type as sent. #}
{% macro named_custom_fields(definitions, entity, values='s.custom_fields', connection='s.connection_id',
                             only_defined=false) -%}
    {{ return(adapter.dispatch('named_custom_fields', 'canonry')(definitions, entity, values, connection,
                                                                 only_defined)) }}
{%- endmacro %}
{#- DuckDB evaluates the subqueries of every CASE branch on every value (an option lookup on a list or on a
    text with quotes): quotes are stripped from a looked-up key so that the JSON path stays valid (option keys
    carry none). -#}
{% macro duckdb__named_custom_fields(definitions, entity, values, connection, only_defined) -%}
    coalesce((
        select json_group_object(coalesce(d.field_name, j.key), json_object(
            'value', case d.remote_type
                when 'enum' then to_json(json_extract_string(d.options_map, '$."' || replace(json_extract_string(j.value, '$'), '"', '') || '"'))
                when 'set' then (select to_json(list(json_extract_string(d.options_map, '$."' || replace(json_extract_string(x.value, '$'), '"', '') || '"')))
                                 from json_each(j.value) as x)
                when 'monetary' then json_object('amount', json_extract(j.value, '$.value'),
                                                 'currency', json_extract_string(j.value, '$.currency'))
                when 'user' then to_json({{ canonical_id(connection, "json_extract_string(j.value, '$')") }})
                when 'select' then to_json(json_extract_string(d.options_map, '$."' || replace(json_extract_string(j.value, '$'), '"', '') || '"'))
                when 'picklist' then to_json(json_extract_string(d.options_map, '$."' || replace(json_extract_string(j.value, '$'), '"', '') || '"'))
                when 'checkbox' then (select to_json(list(json_extract_string(d.options_map, '$."' || replace(t.o, '"', '') || '"')))
                                      from unnest(string_split(json_extract_string(j.value, '$'), ';')) as t(o))
                when 'multipicklist' then (select to_json(list(json_extract_string(d.options_map, '$."' || replace(t.o, '"', '') || '"')))
                                           from unnest(string_split(json_extract_string(j.value, '$'), ';')) as t(o))
                when 'currency' then json_object('amount', try_cast(json_extract_string(j.value, '$') as double),
                                                 'currency', null)
                when 'owner' then to_json({{ canonical_id(connection, "json_extract_string(j.value, '$')") }})
                when 'number' then to_json(try_cast(json_extract_string(j.value, '$') as double))
                when 'ValueSelect' then to_json(coalesce(json_extract_string(d.options_map, '$."' || replace(json_extract_string(j.value, '$'), '"', '') || '"'),
                                                         json_extract_string(j.value, '$')))
                when 'MultiValueSelect' then (select to_json(list(coalesce(json_extract_string(d.options_map, '$."' || replace(json_extract_string(x.value, '$'), '"', '') || '"'),
                                                                           json_extract_string(x.value, '$'))))
                                              from json_each(j.value) as x)
                when 'CompensationRange' then json_object('min', json_extract(j.value, '$.minValue'), 'max', json_extract(j.value, '$.maxValue'),
                                                          'currency', json_extract_string(j.value, '$.currencyCode'),
                                                          'interval', json_extract_string(j.value, '$.interval'))
                when 'date_ms' then to_json(strftime(make_timestamp(cast(json_extract_string(j.value, '$') as bigint) * 1000), '%Y-%m-%d'))
                when 'amount_unit' then json_object('amount', try_cast(json_extract_string(j.value, '$.amount') as double),
                                                    'currency', json_extract_string(j.value, '$.unit'))
                when 'user_object' then to_json({{ canonical_id(connection, "coalesce(json_extract_string(j.value, '$.user_id'), json_extract_string(j.value, '$.id'))") }})
                else j.value end,
            'type', coalesce(d.type, 'unknown'), 'remote_key', j.key))
        from json_each({{ values }}) as j
        {{ 'inner' if only_defined else 'left' }} join {{ definitions }} as d
            on d.connection_id = {{ connection }} and d.entity = '{{ entity }}' and d.remote_key = j.key
        where j.type <> 'NULL' and coalesce(json_extract_string(j.value, '$'), '') <> ''
    ), '{}'::json)
{%- endmacro %}
{% macro postgres__named_custom_fields(definitions, entity, values, connection, only_defined) -%}
    coalesce((
        select jsonb_object_agg(coalesce(d.field_name, j.key), jsonb_build_object(
            'value', case d.remote_type
                when 'enum' then to_jsonb(d.options_map::jsonb ->> (j.value #>> '{}'))
                when 'set' then (select jsonb_agg(d.options_map::jsonb ->> (x #>> '{}'))
                                 from jsonb_array_elements(j.value) as x)
                when 'monetary' then jsonb_build_object('amount', j.value -> 'value', 'currency', j.value ->> 'currency')
                when 'user' then to_jsonb({{ canonical_id(connection, "(j.value #>> '{}')") }})
                when 'select' then to_jsonb(d.options_map::jsonb ->> (j.value #>> '{}'))
                when 'picklist' then to_jsonb(d.options_map::jsonb ->> (j.value #>> '{}'))
                when 'checkbox' then (select jsonb_agg(d.options_map::jsonb ->> o)
                                      from unnest(string_to_array(j.value #>> '{}', ';')) as o)
                when 'multipicklist' then (select jsonb_agg(d.options_map::jsonb ->> o)
                                           from unnest(string_to_array(j.value #>> '{}', ';')) as o)
                when 'currency' then jsonb_build_object('amount', cast(j.value #>> '{}' as double precision),
                                                        'currency', null)
                when 'owner' then to_jsonb({{ canonical_id(connection, "(j.value #>> '{}')") }})
                when 'number' then to_jsonb(cast(j.value #>> '{}' as double precision))
                when 'ValueSelect' then to_jsonb(coalesce(d.options_map::jsonb ->> (j.value #>> '{}'), j.value #>> '{}'))
                when 'MultiValueSelect' then (select jsonb_agg(coalesce(d.options_map::jsonb ->> (x #>> '{}'), x #>> '{}'))
                                              from jsonb_array_elements(j.value) as x)
                when 'CompensationRange' then jsonb_build_object('min', j.value -> 'minValue', 'max', j.value -> 'maxValue',
                                                                 'currency', j.value ->> 'currencyCode',
                                                                 'interval', j.value ->> 'interval')
                when 'date_ms' then to_jsonb(to_char(to_timestamp(cast(j.value #>> '{}' as bigint) / 1000.0) at time zone 'UTC', 'YYYY-MM-DD'))
                when 'amount_unit' then jsonb_build_object('amount', cast(j.value ->> 'amount' as double precision),
                                                           'currency', j.value ->> 'unit')
                when 'user_object' then to_jsonb({{ canonical_id(connection, "coalesce(j.value ->> 'user_id', j.value ->> 'id')") }})
                else j.value end,
            'type', coalesce(d.type, 'unknown'), 'remote_key', j.key))
        from jsonb_each(coalesce({{ values }}::jsonb, '{}'::jsonb)) as j
        {{ 'inner' if only_defined else 'left' }} join {{ definitions }} as d
            on d.connection_id = {{ connection }} and d.entity = '{{ entity }}' and d.remote_key = j.key
        where jsonb_typeof(j.value) <> 'null' and coalesce(j.value #>> '{}', '') <> ''
    ), '{}'::jsonb)
{%- endmacro %}

{# {id: value} of a JSON array of `{id, …, value}` objects (Ashby `customFields`), the form named_custom_fields
   reads; null (no custom field) for an empty or missing array. #}
{% macro id_value_object(expr, key='id', value='value') -%}
    {{ return(adapter.dispatch('id_value_object', 'canonry')(expr, key, value)) }}
{%- endmacro %}
{% macro duckdb__id_value_object(expr, key, value) -%}
    (select json_group_object(json_extract_string(e.value, '$.{{ key }}'), json_extract(e.value, '$.{{ value }}'))
     from json_each({{ expr }}) as e)
{%- endmacro %}
{% macro postgres__id_value_object(expr, key, value) -%}
    (select jsonb_object_agg(e ->> '{{ key }}', e -> '{{ value }}')
     from jsonb_array_elements(coalesce({{ expr }}::jsonb, '[]'::jsonb)) as e)
{%- endmacro %}

{# The custom question fields of a Lever opportunity payload (applications[].customQuestions[].fields[]), as
   a FROM item with one JSON column `field` (lateral on the payload). #}
{% macro lever_question_fields(payload) -%}
    {{ return(adapter.dispatch('lever_question_fields', 'canonry')(payload)) }}
{%- endmacro %}
{% macro duckdb__lever_question_fields(payload) -%}
    unnest(coalesce(json_extract({{ payload }}, '$.applications[*].customQuestions[*].fields[*]'), []::json[])) as q(field)
{%- endmacro %}
{% macro postgres__lever_question_fields(payload) -%}
    jsonb_path_query({{ payload }}::jsonb, '$.applications[*].customQuestions[*].fields[*]') as q(field)
{%- endmacro %}

{# {field id: value} of a Lever opportunity payload's custom question fields; null when it has none. #}
{% macro lever_question_values(payload) -%}
    {{ return(adapter.dispatch('lever_question_values', 'canonry')(payload)) }}
{%- endmacro %}
{% macro duckdb__lever_question_values(payload) -%}
    (select json_group_object(json_extract_string(q.field, '$.id'), json_extract(q.field, '$.value'))
     from {{ duckdb__lever_question_fields(payload) }})
{%- endmacro %}
{% macro postgres__lever_question_values(payload) -%}
    (select jsonb_object_agg(q.field ->> 'id', q.field -> 'value') from {{ postgres__lever_question_fields(payload) }})
{%- endmacro %}
