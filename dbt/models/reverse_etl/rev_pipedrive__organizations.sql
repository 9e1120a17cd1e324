-- Desired state of Pipedrive organizations: name and owner, from the canonical accounts.
select
    a.account_id as record_key,
    a.connection_id,
    a.remote_id as external_id,
    a.name,
    cast(u.remote_id as integer) as owner_remote_id
from {{ ref('crm_accounts') }} as a
left join {{ ref('crm_users') }} as u on u.user_id = a.owner_user_id
where a.provider = 'pipedrive' and not a.is_deleted
