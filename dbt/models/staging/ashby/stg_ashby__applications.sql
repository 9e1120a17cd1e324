with base as (
    {{ ashby_raw('applications', key_scanned=true) }}
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
    {{ json_str('payload', 'status') }} as status,
    {{ json_str('payload', 'candidate.id') }} as candidate_remote_id,
    {{ json_str('payload', 'job.id') }} as job_remote_id,
    {{ json_str('payload', 'currentInterviewStage.id') }} as current_stage_remote_id,
    {{ json_str('payload', 'source.title') }} as source_title,
    {{ json_str('payload', 'creditedToUser.id') }} as credited_to_user_remote_id,
    {{ json_str('payload', 'archiveReason.text') }} as archive_reason,
    {{ json_str('payload', 'archiveReason.reasonType') }} as archive_reason_type,
    {{ iso_ts(json_str('payload', 'archivedAt')) }} as archived_at,
    {{ json_part('payload', 'customFields') }} as custom_fields,
    {{ id_value_object(json_part('payload', 'customFields')) }} as custom_field_values  -- {id: value}: named in int models
from base
