-- One row per candidate email address and phone number, in the provider's order (for type mapping).
with candidates as (
    select connection_id, remote_id, email_addresses, phone_numbers
    from {{ ref('stg_ashby__candidates') }}
),

emails as (
    select
        connection_id,
        remote_id,
        'email' as kind,
        unnest(from_json(email_addresses, '[{"value":"VARCHAR","type":"VARCHAR","isPrimary":"BOOLEAN"}]')) as item,
        generate_subscripts(from_json(email_addresses, '[{"value":"VARCHAR"}]'), 1) as position
    from candidates
    where email_addresses is not null
),

phones as (
    select
        connection_id,
        remote_id,
        'phone' as kind,
        unnest(from_json(phone_numbers, '[{"value":"VARCHAR","type":"VARCHAR","isPrimary":"BOOLEAN"}]')) as item,
        generate_subscripts(from_json(phone_numbers, '[{"value":"VARCHAR"}]'), 1) as position
    from candidates
    where phone_numbers is not null
)

select connection_id, remote_id, kind, position, item.value as value, item.type as provider_type,
       item.isPrimary as is_primary
from (select * from emails union all select * from phones)
