-- Offer status: Greenhouse's unresolved offer is SENT once sent_on is set, else a DRAFT (the seed key
-- 'unresolved_unsent' carries that case); accepted -> SIGNED, rejected -> DENIED, deprecated -> DEPRECATED.
-- sent_at is the sent_on date at midnight UTC; closed_at is resolved_at; start_date is starts_on.
with offers as (
    select *, case when status = 'unresolved' and sent_on is null then 'unresolved_unsent' else status end
        as status_key
    from {{ ref('stg_greenhouse__offers') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as offer_id,
        {{ canonical_fk('s.connection_id', 's.application_remote_id') }} as application_id,
        {{ canonical_fk('s.connection_id', 's.created_by_remote_id') }} as creator_user_id,
        cast(s.sent_on as timestamp) at time zone 'UTC' as sent_at,
        s.resolved_at as closed_at,
        s.starts_on as start_date,
        {{ map_value('map_ats__offer_status', 'greenhouse', 's.status_key', 'status') }},
        {{ standard_columns('greenhouse', named_custom_fields(ref('stg_greenhouse__custom_fields'), 'offer'),
                            's.deleted_at') }}
    from offers as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
