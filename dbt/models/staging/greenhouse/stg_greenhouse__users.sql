with source as (
    select * from {{ ref('stg_greenhouse__records') }} where object = 'users'
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
        {{ json_str('payload', 'name') }} as name,
        {{ json_str('payload', 'primary_email_address') }} as primary_email_address,
        cast({{ json_str('payload', 'disabled') }} as boolean) as disabled,
        cast({{ json_str('payload', 'site_admin') }} as boolean) as site_admin,
        {{ json_str('payload', 'permission_level') }} as permission_level,
        {{ json_str('payload', 'employee_id') }} as employee_id,
        {{ json_part('payload', 'custom_fields') }} as custom_fields
    from source
)

select * from unpacked
