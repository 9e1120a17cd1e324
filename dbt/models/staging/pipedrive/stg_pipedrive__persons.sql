-- API v2 persons; a deleted person's last row comes from /v1/recents (v1 shape): its attributes are
-- taken from the last version before the deletion.
with source as (
    {{ latest_raw_keep_attributes(source('pipedrive', 'persons')) }}
),

unpacked as (
    select
        connection_id,
        remote_id,
        remote_updated_at,
        is_deleted,
        extracted_at,
        _dlt_load_id as _load_id,
        {{ iso_ts(json_str('payload', 'add_time')) }} as remote_created_at,
        {{ json_str('payload', 'name') }} as name,
        {{ json_str('payload', 'first_name') }} as first_name,
        {{ json_str('payload', 'last_name') }} as last_name,
        {{ json_str('payload', 'owner_id') }} as owner_remote_id,
        {{ json_str('payload', 'org_id') }} as organization_remote_id,
        {{ json_str('payload', 'emails[0].value') }} as email,
        {{ json_str('payload', 'emails[0].label') }} as email_label,
        {{ json_str('payload', 'phones[0].value') }} as phone,
        {{ json_str('payload', 'phones[0].label') }} as phone_label,
        {{ json_str('payload', 'job_title') }} as job_title,
        {{ json_part('payload', 'custom_fields') }} as custom_fields
    from source
)

select * from unpacked
