-- Custom field definitions of candidates, applications, jobs and offers (customField.list), one row per
-- field: the latest title, type and selectable values. Ashby keys a field by a UUID and lets admins change
-- its title, so `field_name`, the key canonical `custom_fields` use (dbt/macros/custom_fields.sql), is the
-- snake_case of the title first loaded, made unique per object type with the id's first 8 characters; a
-- retitle changes only `label`.
with latest as (
    {{ latest_raw(source('ashby', 'custom_fields')) }}
),

first_seen as (
    {{ first_raw(source('ashby', 'custom_fields')) }}
),

types as (
    select provider_value, canonical_value from {{ ref('map_custom_field__type') }} where provider = 'ashby'
),

definitions as (
    select
        l.connection_id,
        {{ json_str('l.payload', 'objectType') }} as entity,
        l.remote_id as remote_key,
        {{ json_str('l.payload', 'title') }} as label,
        {{ json_str('l.payload', 'fieldType') }} as remote_type,
        coalesce(t.canonical_value, 'unknown') as type,
        {{ snake_name(json_str('f.payload', 'title')) }} as first_name,
        {{ options_map('l.payload', 'value', 'selectableValues') }} as options_map
    from latest as l
    inner join first_seen as f on f.connection_id = l.connection_id and f.remote_id = l.remote_id
    left join types as t on t.provider_value = {{ json_str('l.payload', 'fieldType') }}
    where not l.is_deleted
)

select
    connection_id, entity, remote_key, label, remote_type, type,
    case when count(*) over (partition by connection_id, entity, first_name) > 1
         then first_name || '_' || left(remote_key, 8) else first_name end as field_name,
    options_map
from definitions
