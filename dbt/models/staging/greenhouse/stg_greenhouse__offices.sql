with source as (
    select * from {{ ref('stg_greenhouse__records') }} where object = 'offices'
),

unpacked as (
    select
        connection_id,
        remote_id,
        remote_updated_at,
        is_deleted,
        deleted_at,
        extracted_at,
        _load_id,
        {{ iso_ts(json_str('payload', 'created_at')) }} as remote_created_at,
        {{ json_str('payload', 'name') }} as name,
        {{ json_str('payload', 'location.name') }} as location_name,
        {{ json_str('payload', 'parent_id') }} as parent_remote_id,
        {{ json_str('payload', 'primary_contact_user_id') }} as primary_contact_user_remote_id,
        {{ json_str('payload', 'external_id') }} as external_id
    from source
)

select * from unpacked
