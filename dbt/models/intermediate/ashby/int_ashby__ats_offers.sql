-- Offer status from `offerStatus`; closed_at is the decision time. Ashby exposes no sent time (null).
with offers as (
    select * from {{ ref('stg_ashby__offers') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as offer_id,
        {{ canonical_fk('s.connection_id', 's.application_remote_id') }} as application_id,
        {{ canonical_fk('s.connection_id', 's.creator_remote_id') }} as creator_user_id,
        cast(null as timestamptz) as sent_at,
        s.decided_at as closed_at,
        s.start_date,
        {{ map_value('map_ats__offer_status', 'ashby', 's.offer_status', 'status') }},
        {{ standard_columns('ashby', named_custom_fields(ref('stg_ashby__custom_fields'), 'Offer',
                                                   values='s.custom_field_values'),
                            's.deleted_at') }}
    from offers as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
