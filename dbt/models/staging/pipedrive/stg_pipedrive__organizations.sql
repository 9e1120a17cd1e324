with source as (
    {{ latest_raw_keep_attributes(source('pipedrive', 'organizations')) }}
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
        {{ json_str('payload', 'owner_id') }} as owner_remote_id,
        {{ json_str('payload', 'website') }} as website,
        {{ json_str('payload', 'industry') }} as industry,
        {{ safe_cast(json_str('payload', 'employee_count'), 'integer') }} as number_of_employees,
        nullif(trim(coalesce({{ json_str('payload', 'address.street_number') }}, '') || ' '
                    || coalesce({{ json_str('payload', 'address.route') }}, '')), '') as street,
        {{ json_str('payload', 'address.locality') }} as city,
        {{ json_str('payload', 'address.admin_area_level_1') }} as state,
        {{ json_str('payload', 'address.postal_code') }} as postal_code,
        {{ json_str('payload', 'address.country') }} as country_name,
        {{ json_part('payload', 'custom_fields') }} as custom_fields
    from source
)

select * from unpacked
