-- Note.ParentId is polymorphic: its key prefix says which canonical foreign key it fills.
with notes as (
    select * from {{ ref('stg_salesforce__notes') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as note_id,
        s.body as content,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        case when s.parent_remote_id like '003%' then {{ canonical_id('s.connection_id', 's.parent_remote_id') }} end
            as contact_id,
        case when s.parent_remote_id like '001%' then {{ canonical_id('s.connection_id', 's.parent_remote_id') }} end
            as account_id,
        case when s.parent_remote_id like '006%' then {{ canonical_id('s.connection_id', 's.parent_remote_id') }} end
            as opportunity_id,
        {{ standard_columns('salesforce') }}
    from notes as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
