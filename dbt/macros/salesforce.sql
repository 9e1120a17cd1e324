{# Salesforce staging helpers. #}

{# Latest version of every record, where a tombstone (a delete known only by id: getDeleted or a key scan)
   keeps the fields of the record's last full version and contributes only the deletion. #}
{% macro salesforce_latest(relation) -%}
    {%- set existing = raw_exists(relation) -%}
    {%- if not existing -%}
    {{ latest_raw(relation) }}
    {%- else -%}
    select l.connection_id, l.remote_id, l.remote_updated_at, l.is_deleted,
           coalesce(b.payload, l.payload) as payload, l.extracted_at, l._dlt_load_id
    from ({{ latest_raw(relation) }}) as l
    left join (
        {%- set from_where -%}
        from {{ relation }}
        where {{ json_str('payload', '_canonry_tombstone') }} is null
        {%- endset %}
        {{ latest_per_key('connection_id, remote_id, payload', from_where,
                          'remote_updated_at desc nulls last, _dlt_load_id desc') }}
    ) as b on b.connection_id = l.connection_id and b.remote_id = l.remote_id
    {%- endif -%}
{%- endmacro %}

{# A JSON list of {value, type} from several (expression, type) pairs, empty values dropped. #}
{% macro salesforce_values(pairs) -%}
    {{ return(adapter.dispatch('salesforce_values', 'canonry')(pairs)) }}
{%- endmacro %}
{% macro duckdb__salesforce_values(pairs) -%}
    to_json(list_filter([{% for expr, kind in pairs %}{'value': {{ expr }}, 'type': '{{ kind }}'}{% if not loop.last %}, {% endif %}{% endfor %}],
                        lambda x: nullif(x.value, '') is not null))
{%- endmacro %}
{% macro postgres__salesforce_values(pairs) -%}
    coalesce((select jsonb_agg(v) from (values {% for expr, kind in pairs %}(jsonb_build_object('value', {{ expr }}, 'type', '{{ kind }}')){% if not loop.last %}, {% endif %}{% endfor %}) as t(v)
              where nullif(v ->> 'value', '') is not null), '[]'::jsonb)
{%- endmacro %}

{# A JSON list of addresses from several (prefix, type) column groups of a staging relation `s`. #}
{% macro salesforce_addresses(groups) -%}
    {{ return(adapter.dispatch('salesforce_addresses', 'canonry')(groups)) }}
{%- endmacro %}
{% macro duckdb__salesforce_addresses(groups) -%}
    to_json(list_filter([{% for prefix, kind in groups %}{'street_1': s.{{ prefix }}street, 'street_2': null::varchar,
        'city': s.{{ prefix }}city, 'state': s.{{ prefix }}state, 'postal_code': s.{{ prefix }}postal_code,
        'country': s.{{ prefix }}country, 'type': '{{ kind }}'}{% if not loop.last %}, {% endif %}{% endfor %}],
        lambda a: coalesce(a.street_1, a.city, a.postal_code, a.country) is not null))
{%- endmacro %}
{% macro postgres__salesforce_addresses(groups) -%}
    coalesce((select jsonb_agg(v) from (values {% for prefix, kind in groups %}(jsonb_build_object('street_1', s.{{ prefix }}street,
        'street_2', null, 'city', s.{{ prefix }}city, 'state', s.{{ prefix }}state, 'postal_code', s.{{ prefix }}postal_code,
        'country', s.{{ prefix }}country, 'type', '{{ kind }}')){% if not loop.last %}, {% endif %}{% endfor %}) as t(v)
        where coalesce(v ->> 'street_1', v ->> 'city', v ->> 'postal_code', v ->> 'country') is not null), '[]'::jsonb)
{%- endmacro %}

{# Salesforce datetimes (`2025-01-01T00:00:00.000+0000`) and dates (`2025-01-01`) -> timestamptz. #}
{% macro sf_ts(expr) -%}
    cast(nullif({{ expr }}, '') as timestamptz)
{%- endmacro %}
