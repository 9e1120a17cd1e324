-- Activities of type task or deadline. Status: done -> CLOSED, else OPEN (map_crm__task_status).
with activities as (
    select * from {{ ref('stg_pipedrive__activities') }}
    where activity_type in ('task', 'deadline')
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as task_id,
        s.subject,
        s.note as content,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ canonical_fk('s.connection_id', 's.organization_remote_id') }} as account_id,
        {{ canonical_fk('s.connection_id', 's.person_remote_id') }} as contact_id,
        {{ canonical_fk('s.connection_id', 's.deal_remote_id') }} as opportunity_id,
        s.due_date,
        case when s.is_done then s.marked_as_done_at end as completed_at,
        {{ map_value('map_crm__task_status', 'pipedrive',
                     "case when s.is_done then 'done' else 'not_done' end", 'status') }},
        {{ standard_columns('pipedrive') }}
    from activities as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
