-- Calls, meetings and emails are HubSpot's engagements. Email direction EMAIL (sent from the CRM) is
-- outbound and INCOMING_EMAIL inbound; meetings have no direction. Calls last hs_call_duration ms.
with calls as (
    select
        *,
        'CALL' as engagement_type,
        direction as engagement_direction,
        occurred_at as start_at,
        occurred_at + {{ ms_interval('coalesce(duration_ms, 0)') }} as end_at
    from {{ ref('stg_hubspot__calls') }}
),

meetings as (
    select
        *,
        'MEETING' as engagement_type,
        cast(null as varchar) as engagement_direction
    from {{ ref('stg_hubspot__meetings') }}
),

emails as (
    select
        *,
        'EMAIL' as engagement_type,
        case email_direction when 'INCOMING_EMAIL' then 'INBOUND' else 'OUTBOUND' end as engagement_direction,
        occurred_at as start_at,
        occurred_at as end_at
    from {{ ref('stg_hubspot__emails') }}
),

unioned as (
    select connection_id, remote_id, remote_created_at, remote_updated_at, is_deleted, extracted_at, _load_id,
           owner_remote_id, company_remote_id, contact_associations, subject, body,
           engagement_type, engagement_direction, start_at, end_at
    from calls
    union all
    select connection_id, remote_id, remote_created_at, remote_updated_at, is_deleted, extracted_at, _load_id,
           owner_remote_id, company_remote_id, contact_associations, subject, body,
           engagement_type, engagement_direction, start_at, end_at
    from meetings
    union all
    select connection_id, remote_id, remote_created_at, remote_updated_at, is_deleted, extracted_at, _load_id,
           owner_remote_id, company_remote_id, contact_associations, subject, body,
           engagement_type, engagement_direction, start_at, end_at
    from emails
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as engagement_id,
        s.engagement_type as type,
        s.engagement_direction as direction,
        s.subject,
        s.body as content,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ canonical_fk('s.connection_id', 's.company_remote_id') }} as account_id,
        {{ canonical_id_list('s.connection_id', 's.contact_associations', '[*].id') }} as contact_ids,
        s.start_at,
        s.end_at,
        {{ standard_columns('hubspot') }}
    from unioned as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
