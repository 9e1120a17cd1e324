with source as (
    {{ salesforce_latest(source('salesforce', 'accounts')) }}
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
        {{ json_str('payload', 'Industry') }} as industry,
        {{ json_str('payload', 'Type') }} as account_type,
        {{ json_str('payload', 'Website') }} as website,
        {{ json_str('payload', 'Phone') }} as phone,
        {{ safe_cast(json_str('payload', 'NumberOfEmployees'), 'bigint') }} as number_of_employees,
        {{ json_str('payload', 'OwnerId') }} as owner_remote_id,
        {{ json_str('payload', 'ParentId') }} as parent_remote_id,
        {{ json_str('payload', 'CurrencyIsoCode') }} as currency,
        {{ json_str('payload', 'BillingStreet') }} as billing_street,
        {{ json_str('payload', 'BillingCity') }} as billing_city,
        {{ json_str('payload', 'BillingState') }} as billing_state,
        {{ json_str('payload', 'BillingPostalCode') }} as billing_postal_code,
        {{ json_str('payload', 'BillingCountry') }} as billing_country,
        {{ json_str('payload', 'ShippingStreet') }} as shipping_street,
        {{ json_str('payload', 'ShippingCity') }} as shipping_city,
        {{ json_str('payload', 'ShippingState') }} as shipping_state,
        {{ json_str('payload', 'ShippingPostalCode') }} as shipping_postal_code,
        {{ json_str('payload', 'ShippingCountry') }} as shipping_country,
        {{ sf_ts(json_str('payload', 'LastActivityDate')) }} as last_activity_at,
        {{ to_json_type('payload') }} as fields  -- custom `__c` values are top-level keys (named in int models)
    from source
)

select * from unpacked
