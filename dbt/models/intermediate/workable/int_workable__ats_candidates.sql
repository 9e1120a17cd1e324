-- One canonical candidate per Workable candidate (Workable has no person above its per-job candidates).
-- Workable gives one email, phone and address without a type: typed OTHER.
with candidates as (
    select * from {{ ref('stg_workable__candidates') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as candidate_id,
        s.first_name,
        s.last_name,
        cast(null as varchar) as company,
        s.headline as title,
        false as is_private,
        nullif(s.email, '') is not null as can_email,
        cast(null as timestamptz) as last_interaction_at,
        {{ typed_value_list('s.email', 'OTHER') }} as emails,
        {{ typed_value_list('s.phone', 'OTHER') }} as phones,
        {{ typed_value_list('s.profile_url', 'OTHER') }} as urls,
        case when nullif(s.address, '') is null then {{ to_json_type("'[]'") }}
             else {{ json_list_of(['s.address']) }} end as locations,
        {{ to_json_type("'[]'") }} as tags,
        {{ standard_columns('workable') }}
    from candidates as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
