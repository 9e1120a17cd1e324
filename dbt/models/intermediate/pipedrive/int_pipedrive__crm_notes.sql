with notes as (
    select * from {{ ref('stg_pipedrive__notes') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as note_id,
        s.content,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ canonical_fk('s.connection_id', 's.person_remote_id') }} as contact_id,
        {{ canonical_fk('s.connection_id', 's.organization_remote_id') }} as account_id,
        {{ canonical_fk('s.connection_id', 's.deal_remote_id') }} as opportunity_id,
        {{ standard_columns('pipedrive') }}
    from notes as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
