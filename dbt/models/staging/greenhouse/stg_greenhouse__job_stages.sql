with source as (
    select * from {{ ref('stg_greenhouse__records') }} where object = 'job_stages'
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
        {{ json_str('payload', 'job_id') }} as job_remote_id,
        {{ json_str('payload', 'name') }} as name,
        cast({{ json_str('payload', 'sort_order') }} as integer) as sort_order,
        cast({{ json_str('payload', 'active') }} as boolean) as active
    from source
)

select * from unpacked
