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
    {{ return(adapter.dispatch('ashby_fk_list', 'canonry')(connection_col, ids_expr)) }}
{%- endmacro %}
{% macro duckdb__ashby_fk_list(connection_col, ids_expr) -%}
    to_json(list_transform(coalesce({{ ids_expr }}, []::varchar[]),
                           lambda x: {{ canonical_id(connection_col, 'x') }}))
{%- endmacro %}
{% macro postgres__ashby_fk_list(connection_col, ids_expr) -%}
    coalesce((select jsonb_agg({{ canonical_id(connection_col, 'x') }} order by n)
              from jsonb_array_elements_text({{ ids_expr }}) with ordinality as t(x, n)
              where x is not null), '[]'::jsonb)
{%- endmacro %}

{# A list of provider ids (DuckDB: VARCHAR[]; PostgreSQL: a jsonb array) from expressions, nulls dropped. #}
{% macro ashby_id_list(exprs) -%}
    {{ return(adapter.dispatch('ashby_id_list', 'canonry')(exprs)) }}
{%- endmacro %}
{% macro duckdb__ashby_id_list(exprs) -%}
    list_filter([{{ exprs | join(', ') }}], lambda x: x is not null)
{%- endmacro %}
{% macro postgres__ashby_id_list(exprs) -%}
    jsonb_build_array({{ exprs | join(', ') }})
{%- endmacro %}

{# A job's location ids (primary, then secondary): a list (DuckDB) / jsonb array (PostgreSQL). #}
{% macro ashby_location_ids(payload) -%}
    {{ return(adapter.dispatch('ashby_location_ids', 'canonry')(payload)) }}
{%- endmacro %}
{% macro duckdb__ashby_location_ids(payload) -%}
    list_concat([{{ json_str(payload, 'locationId') }}],
                coalesce(json_extract_string({{ payload }}, '$.secondaryLocationIds[*]'), []::varchar[]))
{%- endmacro %}
{% macro postgres__ashby_location_ids(payload) -%}
    (jsonb_build_array({{ json_str(payload, 'locationId') }})
     || coalesce({{ payload }}::jsonb -> 'secondaryLocationIds', '[]'::jsonb))
{%- endmacro %}

{# A job's hiring team [{userId, role}]: a struct list (DuckDB) / jsonb array (PostgreSQL). #}
{% macro ashby_hiring_team(payload) -%}
    {{ return(adapter.dispatch('ashby_hiring_team', 'canonry')(payload)) }}
{%- endmacro %}
{% macro duckdb__ashby_hiring_team(payload) -%}
    from_json({{ json_part(payload, 'hiringTeam') }}, '[{"userId":"VARCHAR","role":"VARCHAR"}]')
{%- endmacro %}
{% macro postgres__ashby_hiring_team(payload) -%}
    ({{ payload }}::jsonb -> 'hiringTeam')
{%- endmacro %}

{# The user ids of a hiring team with one role, in order. #}
{% macro ashby_team_user_ids(team, role) -%}
    {{ return(adapter.dispatch('ashby_team_user_ids', 'canonry')(team, role)) }}
{%- endmacro %}
{% macro duckdb__ashby_team_user_ids(team, role) -%}
    list_transform(list_filter({{ team }}, lambda t: t.role = '{{ role }}'), lambda t: t.userId)
{%- endmacro %}
{% macro postgres__ashby_team_user_ids(team, role) -%}
    (select jsonb_agg(e -> 'userId' order by n) from jsonb_array_elements({{ team }}) with ordinality as t(e, n)
     where e ->> 'role' = '{{ role }}')
{%- endmacro %}

{# An interview schedule's events: location of the first, earliest start, latest end, and the distinct
   interviewer ids (sorted) — select-list columns from the events' JSON. #}
{% macro ashby_event_columns(events) -%}
    {{ return(adapter.dispatch('ashby_event_columns', 'canonry')(events)) }}
{%- endmacro %}
{% macro duckdb__ashby_event_columns(events) -%}
    {%- set event_list -%}
    from_json({{ events }}, '[{"startTime":"VARCHAR","endTime":"VARCHAR","location":"VARCHAR","interviewerUserIds":["VARCHAR"]}]')
    {%- endset -%}
    ({{ event_list }})[1].location as location,
    cast(list_min(list_transform({{ event_list }}, lambda e: e.startTime)) as timestamptz) as start_at,
    cast(list_max(list_transform({{ event_list }}, lambda e: e.endTime)) as timestamptz) as end_at,
    list_sort(list_distinct(flatten(list_transform({{ event_list }}, lambda e: e.interviewerUserIds)))) as interviewer_remote_ids
{%- endmacro %}
{% macro postgres__ashby_event_columns(events) -%}
    (cast({{ events }} as jsonb) -> 0 ->> 'location') as location,
    cast((select min(e ->> 'startTime') from jsonb_array_elements(cast({{ events }} as jsonb)) as t(e)) as timestamptz) as start_at,
    cast((select max(e ->> 'endTime') from jsonb_array_elements(cast({{ events }} as jsonb)) as t(e)) as timestamptz) as end_at,
    (select jsonb_agg(distinct u collate "C" order by u collate "C")
     from jsonb_array_elements(cast({{ events }} as jsonb)) as t(e),
          jsonb_array_elements_text(e -> 'interviewerUserIds') as i(u)) as interviewer_remote_ids
{%- endmacro %}

{# A list of ids without its nulls (PostgreSQL: postgres__ashby_fk_list drops them itself). #}
{% macro duckdb__ashby_non_null(ids) -%} list_filter({{ ids }}, lambda x: x is not null) {%- endmacro %}
{% macro postgres__ashby_non_null(ids) -%} {{ ids }} {%- endmacro %}
