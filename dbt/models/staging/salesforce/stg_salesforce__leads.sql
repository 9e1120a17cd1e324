with source as (
    {{ salesforce_latest(source('salesforce', 'leads')) }}
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
        {{ json_str('payload', 'Title') }} as title,
        {{ json_str('payload', 'Company') }} as company,
        {{ json_str('payload', 'Email') }} as email,
        {{ json_str('payload', 'Phone') }} as phone,
        {{ json_str('payload', 'Status') }} as status,
        {{ json_str('payload', 'LeadSource') }} as lead_source,
        {{ json_str('payload', 'OwnerId') }} as owner_remote_id,
        cast({{ json_str('payload', 'IsConverted') }} as boolean) as is_converted,
        {{ sf_ts(json_str('payload', 'ConvertedDate')) }} as converted_at,
        {{ json_str('payload', 'ConvertedContactId') }} as converted_contact_remote_id,
        {{ json_str('payload', 'ConvertedAccountId') }} as converted_account_remote_id,
        {{ json_str('payload', 'Street') }} as street,
        {{ json_str('payload', 'City') }} as city,
        {{ json_str('payload', 'State') }} as state,
        {{ json_str('payload', 'PostalCode') }} as postal_code,
        {{ json_str('payload', 'Country') }} as country
    from source
)

select * from unpacked
