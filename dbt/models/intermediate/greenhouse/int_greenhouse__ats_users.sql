-- access_role: site admins are SUPER_ADMIN; otherwise the user's permission level maps by seed.
with users as (
    select *, case when site_admin then 'site_admin' else permission_level end as role_key
    from {{ ref('stg_greenhouse__users') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as user_id,
        s.first_name,
        s.last_name,
        s.primary_email_address as email,
        s.disabled as is_disabled,
        {{ map_value('map_ats__access_role', 'greenhouse', 's.role_key', 'access_role') }},
        {{ standard_columns('greenhouse', named_custom_fields(ref('stg_greenhouse__custom_fields'), 'user_attribute'),
                            's.deleted_at') }}
    from users as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
