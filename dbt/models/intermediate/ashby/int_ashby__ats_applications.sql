-- Status: Active/Hired/Archived/Lead through the seed (an archived application is REJECTED, not deleted;
-- rejected_at is its archive time and reject_reason the archive reason's text).
-- hired_at: a Hired application's accepted offer decision time, else its last change (Ashby's application
-- carries no hire time; its stage history is a separate endpoint Canonry does not read).
with applications as (
    select * from {{ ref('stg_ashby__applications') }}
),

accepted_offers as (
    select connection_id, application_remote_id, max(decided_at) as accepted_at
    from {{ ref('stg_ashby__offers') }}
    where acceptance_status = 'Accepted' and not is_deleted
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
        s.remote_created_at as applied_at,
        case when s.status = 'Archived' then coalesce(s.archived_at, s.remote_updated_at) end as rejected_at,
        case when s.status = 'Hired' then coalesce(o.accepted_at, s.remote_updated_at) end as hired_at,
        {{ canonical_fk('s.connection_id', 's.current_stage_remote_id') }} as current_stage_id,
        case when s.status = 'Archived' then s.archive_reason end as reject_reason,
        s.source_title as source,
        {{ canonical_fk('s.connection_id', 's.credited_to_user_remote_id') }} as credited_to_user_id,
        {{ map_value('map_ats__application_status', 'ashby', 's.status', 'status') }},
        {{ standard_columns('ashby', named_custom_fields(ref('stg_ashby__custom_fields'), 'Application',
                                                   values='s.custom_field_values'),
                            's.deleted_at') }}
    from applications as s
    left join accepted_offers as o
        on o.connection_id = s.connection_id and o.application_remote_id = s.remote_id
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
