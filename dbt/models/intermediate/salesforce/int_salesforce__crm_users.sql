with users as (
    select * from {{ ref('stg_salesforce__users') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as user_id,
        coalesce(s.name, trim(coalesce(s.first_name, '') || ' ' || coalesce(s.last_name, ''))) as name,
        s.email,
        coalesce(s.is_active, false) and not s.is_deleted as is_active,
        {{ standard_columns('salesforce') }}
    from users as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
