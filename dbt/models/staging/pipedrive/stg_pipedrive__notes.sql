-- API v1 notes (`/v1/notes`, then `/v1/recents?items=note`): `YYYY-MM-DD HH:MM:SS` UTC times.
with source as (
    {{ latest_raw_keep_attributes(source('pipedrive', 'notes')) }}
),

unpacked as (
    select
        connection_id,
        remote_id,
        remote_updated_at,
        is_deleted,
        extracted_at,
        _dlt_load_id as _load_id,
        {{ utc_text_ts(json_str('payload', 'add_time')) }} as remote_created_at,
        {{ json_str('payload', 'content') }} as content,
        {{ json_str('payload', 'user_id') }} as owner_remote_id,
        {{ json_str('payload', 'person_id') }} as person_remote_id,
        {{ json_str('payload', 'org_id') }} as organization_remote_id,
        {{ json_str('payload', 'deal_id') }} as deal_remote_id
    from source
)

select * from unpacked
