with source as (
    {{ salesforce_latest(source('salesforce', 'opportunity_stages')) }}
),

unpacked as (
    select
        connection_id,
        remote_id,
        remote_updated_at,
        is_deleted,
        extracted_at,
        _dlt_load_id as _load_id,
        {{ sf_ts(json_str('payload', 'CreatedDate')) }} as remote_created_at,
        {{ json_str('payload', 'ApiName') }} as api_name,
        {{ json_str('payload', 'MasterLabel') }} as name,
        {{ safe_cast(json_str('payload', 'SortOrder'), 'integer') }} as stage_order,
        cast({{ json_str('payload', 'IsActive') }} as boolean) as is_active,
        cast({{ json_str('payload', 'IsClosed') }} as boolean) as is_closed,
        cast({{ json_str('payload', 'IsWon') }} as boolean) as is_won,
        {{ safe_cast(json_str('payload', 'DefaultProbability'), 'double') }} as default_probability
    from source
)

select * from unpacked
