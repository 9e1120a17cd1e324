-- Custom field definitions of Account, Contact and Opportunity (the `__c` fields of describe), one row per
-- field: the latest label, type and picklist values. `field_name`, the key canonical `custom_fields` use
-- (dbt/macros/custom_fields.sql), is the API name without its `__c` suffix, lower-cased (`Contract_Value__c`
-- -> `contract_value`): Salesforce keeps the API name when a field is relabelled, so the key is stable and
-- readable. remote_type is Salesforce's type, except a lookup to User, which is `user` (a user reference).
with latest as (
    {{ latest_raw(source('salesforce', 'custom_fields')) }}
),

types as (
    select provider_value, canonical_value from {{ ref('map_custom_field__type') }} where provider = 'salesforce'
),

kinds as (
    select
        connection_id,
        {{ json_str('payload', 'object') }} as entity,
        {{ json_str('payload', 'name') }} as remote_key,
        {{ json_str('payload', 'label') }} as label,
        case when {{ json_str('payload', 'type') }} = 'reference'
                  and {{ json_str('payload', 'referenceTo[0]') }} = 'User' then 'user'
             else {{ json_str('payload', 'type') }} end as remote_type,
        {{ options_map('payload', 'value', 'picklistValues') }} as options_map
    from latest
)

select
    k.connection_id, k.entity, k.remote_key, k.label, k.remote_type,
    coalesce(t.canonical_value, 'unknown') as type,
    lower(left(k.remote_key, length(k.remote_key) - 3)) as field_name,
    k.options_map
from kinds as k
left join types as t on t.provider_value = k.remote_type
