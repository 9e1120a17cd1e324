-- Custom field definitions of every field type (candidate, application, job, offer, user_attribute…), one
-- row per field: the latest name and value type. `field_name`, the key canonical `custom_fields` use
-- (dbt/macros/custom_fields.sql), is Greenhouse's `name_key`: the stable lower-case identifier records key
-- their values by, unchanged by a rename (the current name is `label`). remote_type is the decoding the
-- value needs: currency values are `{amount, unit}` (`amount_unit`), user values `{user_id, name}`
-- (`user_object`); select values already carry the options' names, so no options map is needed.
with latest as (
    {{ latest_raw(source('greenhouse', 'custom_fields')) }}
),

types as (
    select provider_value, canonical_value from {{ ref('map_custom_field__type') }} where provider = 'greenhouse'
),

definitions as (
    select
        connection_id,
        {{ json_str('payload', 'field_type') }} as entity,
        {{ json_str('payload', 'name_key') }} as remote_key,
        {{ json_str('payload', 'name') }} as label,
        {{ json_str('payload', 'value_type') }} as value_type
    from latest
)

select
    d.connection_id, d.entity, d.remote_key, d.label,
    case d.value_type when 'currency' then 'amount_unit' when 'user' then 'user_object'
                      else d.value_type end as remote_type,
    coalesce(t.canonical_value, 'unknown') as type,
    d.remote_key as field_name,
    cast(null as varchar) as options_map
from definitions as d
left join types as t on t.provider_value = d.value_type
