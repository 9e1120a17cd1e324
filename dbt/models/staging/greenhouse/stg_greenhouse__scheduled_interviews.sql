with source as (
    select * from {{ ref('stg_greenhouse__records') }} where object = 'scheduled_interviews'
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
        {{ json_str('payload', 'application_id') }} as application_remote_id,
        {{ json_str('payload', 'job_stage_id') }} as job_stage_remote_id,
        {{ json_str('payload', 'organizer_id') }} as organizer_remote_id,
        {{ json_part('payload', 'interviewers') }} as interviewers,
        {{ json_str('payload', 'location') }} as location,
        {{ iso_ts(json_str('payload', 'start_at')) }} as start_at,
        {{ iso_ts(json_str('payload', 'end_at')) }} as end_at,
        {{ json_str('payload', 'status') }} as status,
        {{ json_str('payload', 'external_event_id') }} as external_event_id
    from source
)

select * from unpacked
