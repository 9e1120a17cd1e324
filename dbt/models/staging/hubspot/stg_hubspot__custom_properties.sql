-- Custom property definitions of contacts, companies and deals, one row per property: the latest label,
-- kind and options. `field_name`, the key canonical `custom_fields` use (dbt/macros/custom_fields.sql), is
-- the property's internal name: HubSpot never changes it (a rename changes the label), so it is stable and
-- readable as it is. remote_type is the kind the value decoding needs: owner (referencedObjectType OWNER),
-- checkbox (multi-select), select, currency (showCurrencySymbol), else HubSpot's `type`.
with latest as (
    {{ latest_raw(source('hubspot', 'custom_properties')) }}
),

types as (
    select provider_value, canonical_value from {{ ref('map_custom_field__type') }} where provider = 'hubspot'
),

kinds as (
    select
        connection_id,
        {{ json_str('payload', 'object') }} as entity,
        {{ json_str('payload', 'name') }} as remote_key,
        {{ json_str('payload', 'label') }} as label,
        case when {{ json_str('payload', 'referencedObjectType') }} = 'OWNER' then 'owner'
             when {{ json_str('payload', 'fieldType') }} = 'checkbox' then 'checkbox'
             when {{ json_str('payload', 'type') }} = 'enumeration' then 'select'
             when {{ json_str('payload', 'showCurrencySymbol') }} = 'true' then 'currency'
             else {{ json_str('payload', 'type') }} end as remote_type,
        {{ options_map('payload', 'value') }} as options_map
    from latest
)

select
    k.connection_id, k.entity, k.remote_key, k.label, k.remote_type,
    coalesce(t.canonical_value, 'unknown') as type,
    k.remote_key as field_name,
    k.options_map
from kinds as k
left join types as t on t.provider_value = k.remote_type
