with source as (
    {{ latest_raw(source('lever', 'postings')) }}
),

unpacked as (
    select
        connection_id,
        remote_id,
        remote_updated_at,
        is_deleted,
        extracted_at,
        _dlt_load_id as _load_id,
        {{ epoch_ms_ts(json_str('payload', 'createdAt')) }} as remote_created_at,
        {{ json_str('payload', 'text') }} as name,
        {{ json_str('payload', 'requisitionCodes[0]') }} as code,
        {{ json_str('payload', 'content.description') }} as description,
        {{ json_str('payload', 'state') }} as state,
        {{ json_str('payload', 'confidentiality') }} as confidentiality,
        {{ json_str('payload', 'categories.department') }} as department,
        {{ json_str('payload', 'categories.team') }} as team,
        {{ json_str('payload', 'categories.location') }} as location,
        coalesce({{ json_part('payload', 'categories.allLocations') }}, '[]') as all_locations,
        {{ json_str('payload', 'hiringManager') }} as hiring_manager_remote_id,
        {{ json_str('payload', 'owner') }} as owner_remote_id
    from source
)

select * from unpacked
