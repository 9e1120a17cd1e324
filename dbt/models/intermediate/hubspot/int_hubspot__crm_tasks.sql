with tasks as (
    select * from {{ ref('stg_hubspot__tasks') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as task_id,
        s.subject,
        s.body as content,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ canonical_fk('s.connection_id', 's.company_remote_id') }} as account_id,
        {{ canonical_fk('s.connection_id', 's.contact_remote_id') }} as contact_id,
        {{ canonical_fk('s.connection_id', 's.deal_remote_id') }} as opportunity_id,
        cast(s.occurred_at as date) as due_date,
        s.completed_at,
        {{ map_value('map_crm__task_status', 'hubspot', 's.task_status', 'status') }},
        {{ standard_columns('hubspot') }}
    from tasks as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
