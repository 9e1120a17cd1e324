with base as (
    {{ ashby_raw('jobs', key_scanned=true) }}
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    raw_deleted as is_deleted,
    raw_deleted_at as deleted_at,
    extracted_at,
    _load_id,
    {{ iso_ts(json_str('payload', 'createdAt')) }} as remote_created_at,
    {{ json_str('payload', 'title') }} as name,
    {{ json_str('payload', 'status') }} as status,
    {{ json_str('payload', 'employmentType') }} as employment_type,
    coalesce(cast({{ json_str('payload', 'confidential') }} as boolean), false) as confidential,
    {{ json_str('payload', 'departmentId') }} as department_remote_id,
    {{ ashby_location_ids('payload') }} as location_remote_ids,
    {{ ashby_hiring_team('payload') }} as hiring_team,
    {{ json_str('payload', 'defaultInterviewPlanId') }} as interview_plan_remote_id,
    {{ json_part('payload', 'customFields') }} as custom_fields,
    {{ id_value_object(json_part('payload', 'customFields')) }} as custom_field_values  -- {id: value}: named in int models
from base
