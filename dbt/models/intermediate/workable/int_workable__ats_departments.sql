with departments as (
    select * from {{ ref('stg_workable__departments') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as department_id,
        s.name,
        {{ canonical_fk('s.connection_id', 's.parent_remote_id') }} as parent_department_id,
        {{ standard_columns('workable') }}
    from departments as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
