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
        {{ json_items('email_addresses') }}
    from candidates
    where email_addresses is not null
),

phones as (
    select
        connection_id,
        remote_id,
        'phone' as kind,
        {{ json_items('phone_numbers') }}
    from candidates
    where phone_numbers is not null
)

select connection_id, remote_id, kind, item_position as position, {{ json_str('item', 'value') }} as value,
       {{ json_str('item', 'type') }} as provider_type, cast({{ json_str('item', 'isPrimary') }} as boolean) as is_primary
from (select * from emails union all select * from phones) as contacts
