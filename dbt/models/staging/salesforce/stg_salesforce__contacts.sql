with source as (
    {{ salesforce_latest(source('salesforce', 'contacts')) }}
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
        {{ json_str('payload', 'FirstName') }} as first_name,
        {{ json_str('payload', 'LastName') }} as last_name,
        {{ json_str('payload', 'Email') }} as email,
        {{ json_str('payload', 'Phone') }} as phone,
        {{ json_str('payload', 'MobilePhone') }} as mobile_phone,
        {{ json_str('payload', 'Title') }} as title,
        {{ json_str('payload', 'AccountId') }} as account_remote_id,
        {{ json_str('payload', 'OwnerId') }} as owner_remote_id,
        {{ json_str('payload', 'LeadSource') }} as lead_source,
        {{ json_str('payload', 'MailingStreet') }} as mailing_street,
        {{ json_str('payload', 'MailingCity') }} as mailing_city,
        {{ json_str('payload', 'MailingState') }} as mailing_state,
        {{ json_str('payload', 'MailingPostalCode') }} as mailing_postal_code,
        {{ json_str('payload', 'MailingCountry') }} as mailing_country,
        {{ sf_ts(json_str('payload', 'LastActivityDate')) }} as last_activity_at,
        {{ to_json_type('payload') }} as fields  -- custom `__c` values are top-level keys (named in int models)
    from source
)

select * from unpacked
