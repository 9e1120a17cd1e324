-- Custom field definitions of persons, organizations and deals, one row per field: the latest label, type
-- and options, and `field_name`, the stable key canonical `custom_fields` use (dbt/macros/custom_fields.sql):
-- snake_case of the name first loaded, made unique per entity with the key's first 8 characters.
with latest as (
    {{ latest_raw(source('pipedrive', 'custom_fields')) }}
),

first_seen as (
    {{ first_raw(source('pipedrive', 'custom_fields')) }}
),

types as (
    select provider_value, canonical_value from {{ ref('map_custom_field__type') }} where provider = 'pipedrive'
),

definitions as (
    select
        l.connection_id,
        {{ json_str('l.payload', 'entity') }} as entity,
        {{ json_str('l.payload', 'key') }} as remote_key,
        {{ json_str('l.payload', 'name') }} as label,
        {{ json_str('l.payload', 'field_type') }} as remote_type,
        coalesce(t.canonical_value, 'unknown') as type,
        {{ snake_name(json_str('f.payload', 'name')) }} as first_name,
        {{ options_map('l.payload') }} as options_map
    from latest as l
    inner join first_seen as f on f.connection_id = l.connection_id and f.remote_id = l.remote_id
    left join types as t on t.provider_value = {{ json_str('l.payload', 'field_type') }}
)

select
    connection_id, entity, remote_key, label, remote_type, type,
    case when count(*) over (partition by connection_id, entity, first_name) > 1
         then first_name || '_' || left(remote_key, 8) else first_name end as field_name,
    options_map
from definitions
