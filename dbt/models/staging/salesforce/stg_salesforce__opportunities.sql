with source as (
    {{ salesforce_latest(source('salesforce', 'opportunities')) }}
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
        {{ json_str('payload', 'Name') }} as name,
        {{ json_str('payload', 'Description') }} as description,
        {{ safe_cast(json_str('payload', 'Amount'), 'decimal(18, 2)') }} as amount,
        {{ json_str('payload', 'CurrencyIsoCode') }} as currency,
        {{ json_str('payload', 'AccountId') }} as account_remote_id,
        {{ json_str('payload', 'OwnerId') }} as owner_remote_id,
        {{ json_str('payload', 'StageName') }} as stage_name,
        cast({{ json_str('payload', 'IsClosed') }} as boolean) as is_closed,
        cast({{ json_str('payload', 'IsWon') }} as boolean) as is_won,
        cast({{ json_str('payload', 'CloseDate') }} as date) as close_date,
        {{ sf_ts(json_str('payload', 'LastActivityDate')) }} as last_activity_at,
        {{ to_json_type('payload') }} as fields  -- custom `__c` values are top-level keys (named in int models)
    from source
)

select * from unpacked
