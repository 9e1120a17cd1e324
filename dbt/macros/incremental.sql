{# Incremental staging (benchmarks/README.md, "incremental cost").

   `latest_raw_incremental(relation)` returns exactly what `latest_raw(relation)` returns for the keys it
   has to recompute. On the first run, or with --full-refresh, that is every key (it is `latest_raw`).
   On an incremental run it is the keys (connection_id, remote_id) that have a raw row loaded after the
   newest `_load_id` this model holds *for the same connection* (read at compile time and inlined, so the
   filter reaches the raw scan; a connection the model holds no rows of contributes every key). Per
   connection, not one watermark for the table: two connections syncing at once finish their loads in
   either order, and a load id older than another connection's newest must still be picked up. For those
   keys the latest version is chosen among *all* their raw rows with latest_raw's ordering, so the model's
   rows equal a full rebuild's. Use it with
       config(materialized='incremental', unique_key=['connection_id', 'remote_id'],
              incremental_strategy='delete+insert')
   and alias `_dlt_load_id as _load_id` in the model (every staging model does). #}
{% macro latest_raw_incremental(relation) -%}
    {%- set existing = raw_exists(relation) -%}
    {%- if not existing or not is_incremental() -%}
    {{ latest_raw(relation) }}
    {%- else -%}
    {%- set known = {} -%}
    {%- for row in run_query('select connection_id, max(_load_id) from ' ~ this ~ ' group by connection_id') -%}
        {%- if row[1] is not none -%}{%- do known.update({row[0]: row[1]}) -%}{%- endif -%}
    {%- endfor %}
    {%- set from_where -%}
    from {{ relation }} as r
    where exists (
        select 1 from {{ relation }} as n
        where n.connection_id = r.connection_id and n.remote_id = r.remote_id
          and {{ canonical_changed('n', known, '_dlt_load_id') }}
    )
    {%- endset %}
    {{ latest_per_key('r.*', from_where,
                      'r.remote_updated_at desc nulls last, r.is_deleted desc, r._dlt_load_id desc', 'r.') }}
    {%- endif -%}
{%- endmacro %}
