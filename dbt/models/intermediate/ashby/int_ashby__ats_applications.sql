-- Status: Active/Hired/Archived/Lead through the seed (an archived application is REJECTED, not deleted;
-- rejected_at is its archive time and reject_reason the archive reason's text).
with applications as (
    select * from {{ ref('stg_ashby__applications') }}
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
        {{ canonical_fk('s.connection_id', 's.current_stage_remote_id') }} as current_stage_id,
        case when s.status = 'Archived' then s.archive_reason end as reject_reason,
        s.source_title as source,
        {{ canonical_fk('s.connection_id', 's.credited_to_user_remote_id') }} as credited_to_user_id,
        {{ map_value('map_ats__application_status', 'ashby', 's.status', 'status') }},
        {{ standard_columns('ashby', "coalesce(s.custom_fields, '[]')", 's.deleted_at') }}
    from applications as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
