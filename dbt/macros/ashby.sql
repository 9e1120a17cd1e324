{# Ashby: the latest raw version of every record, with deletion from the raw row (tombstones) and,
   for sync-token objects, from key scans: a record whose latest version was extracted before the
   connection's latest completed full pass of that object was not in that pass: it is gone from Ashby.
   Columns: connection_id, remote_id, remote_updated_at, extracted_at, _load_id, payload, raw_deleted,
   raw_deleted_at. #}
{% macro ashby_raw(table, key_scanned=false) -%}
    select
        r.connection_id,
        r.remote_id,
        r.remote_updated_at,
        r.extracted_at,
        r._dlt_load_id as _load_id,
        r.payload,
        {%- if key_scanned %}
        r.is_deleted or coalesce(r.extracted_at < p.last_full_pass_at, false) as raw_deleted,
        case when r.is_deleted then coalesce(r.remote_updated_at, r.extracted_at)
             when r.extracted_at < p.last_full_pass_at then p.last_full_pass_at end as raw_deleted_at
        {%- else %}
        r.is_deleted as raw_deleted,
        case when r.is_deleted then coalesce(r.remote_updated_at, r.extracted_at) end as raw_deleted_at
        {%- endif %}
    from ({{ latest_raw(source('ashby', table)) }}) as r
    {%- if key_scanned %}
    left join {{ ref('stg_ashby__full_passes') }} as p
        on p.connection_id = r.connection_id and p.object_name = '{{ table }}'
    {%- endif %}
{%- endmacro %}

{# Archival as deletion (metadata `isArchived`, cancelled interview schedules): is_deleted and
   deleted_at from the raw flags and an archival condition on the payload. #}
{% macro ashby_deletion(archived_condition) -%}
        raw_deleted or coalesce({{ archived_condition }}, false) as is_deleted,
        case when raw_deleted then raw_deleted_at
             when coalesce({{ archived_condition }}, false) then coalesce(remote_updated_at, extracted_at)
        end as deleted_at
{%- endmacro %}

{# A JSON list of canonical ids from a JSON array of provider ids (a payload path ending in [*]). #}
{% macro ashby_fk_list(connection_col, ids_expr) -%}
    to_json(list_transform(coalesce({{ ids_expr }}, []::varchar[]),
                           lambda x: {{ canonical_id(connection_col, 'x') }}))
{%- endmacro %}
