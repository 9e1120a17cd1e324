with source as (
    select * from {{ ref('stg_greenhouse__records') }} where object = 'candidates'
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
        {{ json_str('payload', 'first_name') }} as first_name,
        {{ json_str('payload', 'last_name') }} as last_name,
        {{ json_str('payload', 'company') }} as company,
        {{ json_str('payload', 'title') }} as title,
        cast({{ json_str('payload', 'is_private') }} as boolean) as is_private,
        cast({{ json_str('payload', 'can_email') }} as boolean) as can_email,
        {{ iso_ts(json_str('payload', 'last_activity_at')) }} as last_activity_at,
        {{ json_part('payload', 'email_addresses') }} as email_addresses,
        {{ json_part('payload', 'phone_numbers') }} as phone_numbers,
        {{ json_part('payload', 'website_addresses') }} as website_addresses,
        {{ json_part('payload', 'social_media_addresses') }} as social_media_addresses,
        {{ json_part('payload', 'addresses') }} as addresses,
        {{ json_part('payload', 'tags') }} as tags,
        {{ json_str('payload', 'recruiter_id') }} as recruiter_remote_id,
        {{ json_str('payload', 'coordinator_id') }} as coordinator_remote_id,
        {{ json_part('payload', 'custom_fields') }} as custom_fields
    from source
)

select * from unpacked
