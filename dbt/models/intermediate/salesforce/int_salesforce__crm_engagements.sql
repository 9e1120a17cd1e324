-- Events are MEETINGs; Tasks with TaskSubtype Call/Email are CALL/EMAIL engagements (logged activities).
-- Direction: CallType Inbound/Outbound for calls, OUTBOUND for logged emails, none for meetings.
with events as (
    select * from {{ ref('stg_salesforce__events') }}
),

tasks as (
    select * from {{ ref('stg_salesforce__tasks') }}
    where task_subtype in ('Call', 'Email')
),

activities as (
    select connection_id, remote_id, remote_created_at, remote_updated_at, is_deleted, extracted_at, _load_id,
           'Event' as kind, null as call_type, subject, description, owner_remote_id, account_remote_id,
           who_remote_id, start_at, end_at
    from events
    union all
    select connection_id, remote_id, remote_created_at, remote_updated_at, is_deleted, extracted_at, _load_id,
           task_subtype as kind, call_type, subject, description, owner_remote_id, account_remote_id,
           who_remote_id, coalesce(completed_at, due_at) as start_at, coalesce(completed_at, due_at) as end_at
    from tasks
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as engagement_id,
        {{ map_value('map_crm__engagement_type', 'salesforce', 's.kind', 'type') }},
        case
            when s.kind = 'Call' and lower(s.call_type) = 'inbound' then 'INBOUND'
            when s.kind = 'Call' and lower(s.call_type) = 'outbound' then 'OUTBOUND'
            when s.kind = 'Email' then 'OUTBOUND'
        end as direction,
        s.subject,
        s.description as content,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ canonical_fk('s.connection_id', 's.account_remote_id') }} as account_id,
        {{ to_json_type("case when s.who_remote_id like '003%' then '[\"' || " ~ canonical_id('s.connection_id', 's.who_remote_id') ~ " || '\"]' else '[]' end") }}
            as contact_ids,
        s.start_at,
        s.end_at,
        {{ standard_columns('salesforce') }}
    from activities as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
