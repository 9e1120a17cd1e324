-- Tasks whose TaskSubtype is Call or Email are logged calls/emails: they go to crm_engagements, not here.
-- Status through map_crm__task_status; a custom status the seed does not know falls back to IsClosed.
with tasks as (
    select * from {{ ref('stg_salesforce__tasks') }}
    where coalesce(task_subtype, 'Task') not in ('Call', 'Email')
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as task_id,
        s.subject,
        s.description as content,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ canonical_fk('s.connection_id', 's.account_remote_id') }} as account_id,
        case when s.who_remote_id like '003%' then {{ canonical_id('s.connection_id', 's.who_remote_id') }} end
            as contact_id,
        case when s.what_remote_id like '006%' then {{ canonical_id('s.connection_id', 's.what_remote_id') }} end
            as opportunity_id,
        cast(s.due_at at time zone 'UTC' as date) as due_date,  -- ActivityDate is a date (the contract's type)
        s.completed_at,
        coalesce(
            (select m.canonical_value from {{ ref('map_crm__task_status') }} m
             where m.provider = 'salesforce' and lower(m.provider_value) = lower(s.status)),
            case when s.is_closed then 'CLOSED' else 'OPEN' end) as status,
        {{ standard_columns('salesforce') }}
    from tasks as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
