with source as (
    select * from {{ ref('stg_greenhouse__records') }} where object = 'applications'
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
        {{ json_str('payload', 'candidate_id') }} as candidate_remote_id,
        {{ json_str('payload', 'job_id') }} as job_remote_id,
        cast({{ json_str('payload', 'prospect') }} as boolean) as prospect,
        {{ iso_ts(json_str('payload', 'applied_at')) }} as applied_at,
        {{ iso_ts(json_str('payload', 'rejected_at')) }} as rejected_at,
        {{ iso_ts(json_str('payload', 'last_activity_at')) }} as last_activity_at,
        {{ json_str('payload', 'status') }} as status,
        {{ json_str('payload', 'current_stage_id') }} as current_stage_remote_id,
        {{ json_str('payload', 'source.public_name') }} as source_name,
        {{ json_str('payload', 'credited_to_id') }} as credited_to_remote_id,
        {{ json_str('payload', 'rejection_reason.name') }} as rejection_reason_name,
        {{ json_part('payload', 'custom_fields') }} as custom_fields
    from source
)

select * from unpacked
