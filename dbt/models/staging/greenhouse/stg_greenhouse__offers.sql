with source as (
    select * from {{ ref('stg_greenhouse__records') }} where object = 'offers'
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
        {{ json_str('payload', 'candidate_id') }} as candidate_remote_id,
        {{ json_str('payload', 'job_id') }} as job_remote_id,
        cast({{ json_str('payload', 'version') }} as integer) as version,
        {{ json_str('payload', 'status') }} as status,
        {{ json_str('payload', 'created_by_id') }} as created_by_remote_id,
        cast(nullif({{ json_str('payload', 'sent_on') }}, '') as date) as sent_on,
        {{ iso_ts(json_str('payload', 'resolved_at')) }} as resolved_at,
        cast(nullif({{ json_str('payload', 'starts_on') }}, '') as date) as starts_on,
        {{ json_part('payload', 'custom_fields') }} as custom_fields
    from source
)

select * from unpacked
