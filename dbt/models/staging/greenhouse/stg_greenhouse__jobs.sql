with source as (
    select * from {{ ref('stg_greenhouse__records') }} where object = 'jobs'
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
        {{ json_str('payload', 'requisition_id') }} as requisition_id,
        {{ json_str('payload', 'notes') }} as notes,
        cast({{ json_str('payload', 'confidential') }} as boolean) as confidential,
        {{ json_str('payload', 'status') }} as status,
        cast({{ json_str('payload', 'is_template') }} as boolean) as is_template,
        {{ iso_ts(json_str('payload', 'opened_at')) }} as opened_at,
        {{ iso_ts(json_str('payload', 'closed_at')) }} as closed_at,
        {{ json_part('payload', 'department_ids') }} as department_ids,
        {{ json_part('payload', 'office_ids') }} as office_ids,
        {{ json_part('payload', 'hiring_manager_ids') }} as hiring_manager_ids,
        {{ json_part('payload', 'recruiter_ids') }} as recruiter_ids,
        {{ json_part('payload', 'coordinator_ids') }} as coordinator_ids,
        {{ json_part('payload', 'custom_fields') }} as custom_fields
    from source
)

select * from unpacked
