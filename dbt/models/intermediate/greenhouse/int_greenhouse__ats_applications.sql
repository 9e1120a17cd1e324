-- Greenhouse applications carry their own status (active/rejected/hired/converted), mapped by seed.
-- hired_at: Harvest records no hire time on the application. A hired application's time is its accepted
-- offer's resolution (the hire decision), else its last activity (when it moved to hired, or later).
with applications as (
    select * from {{ ref('stg_greenhouse__applications') }}
),

accepted_offers as (
    select connection_id, application_remote_id, max(resolved_at) as accepted_at
    from {{ ref('stg_greenhouse__offers') }}
    where status = 'accepted' and not is_deleted
    group by 1, 2
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as application_id,
        {{ canonical_fk('s.connection_id', 's.candidate_remote_id') }} as candidate_id,
        {{ canonical_fk('s.connection_id', 's.job_remote_id') }} as job_id,
        s.applied_at,
        s.rejected_at,
        case when s.status = 'hired' then coalesce(o.accepted_at, s.last_activity_at) end as hired_at,
        {{ canonical_fk('s.connection_id', 's.current_stage_remote_id') }} as current_stage_id,
        s.rejection_reason_name as reject_reason,
        s.source_name as source,
        {{ canonical_fk('s.connection_id', 's.credited_to_remote_id') }} as credited_to_user_id,
        {{ map_value('map_ats__application_status', 'greenhouse', 's.status', 'status') }},
        {{ standard_columns('greenhouse', named_custom_fields(ref('stg_greenhouse__custom_fields'), 'application'),
                            's.deleted_at') }}
    from applications as s
    left join accepted_offers as o
        on o.connection_id = s.connection_id and o.application_remote_id = s.remote_id
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
