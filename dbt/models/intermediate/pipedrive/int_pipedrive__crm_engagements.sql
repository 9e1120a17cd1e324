-- Activities of type call, meeting or email (map_crm__engagement_type). Pipedrive records no
-- direction: it stays null. contact_ids: the activity's person (its primary participant).
with activities as (
    select * from {{ ref('stg_pipedrive__activities') }}
    where activity_type in (select provider_value from {{ ref('map_crm__engagement_type') }}
                            where provider = 'pipedrive')
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as engagement_id,
        {{ map_value('map_crm__engagement_type', 'pipedrive', 's.activity_type', 'type') }},
        cast(null as varchar) as direction,
        s.subject,
        s.note as content,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ canonical_fk('s.connection_id', 's.organization_remote_id') }} as account_id,
        {{ canonical_id_singleton_list('s.connection_id', 's.person_remote_id') }} as contact_ids,
        s.start_at,
        s.end_at,
        {{ standard_columns('pipedrive') }}
    from activities as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
