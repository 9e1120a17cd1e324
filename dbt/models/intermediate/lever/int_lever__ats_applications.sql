-- A Lever opportunity is one application (of its contact, to at most one posting).
-- Status: archived with a reason whose status is `hired` -> HIRED, archived otherwise -> REJECTED,
-- not archived -> ACTIVE (through seed map_ats__application_status on the derived value).
-- rejected_at / hired_at: the archive time, by the archive reason's status.
with opportunities as (
    select * from {{ ref('stg_lever__opportunities') }}
),

reasons as (
    select * from {{ ref('stg_lever__archive_reasons') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

s as (
    select
        o.*,
        r.name as archive_reason_name,
        case
            when o.archived_at is null and o.archive_reason_remote_id is null then 'active'
            else coalesce(r.status, 'unknown-archive-reason')
        end as lifecycle
    from opportunities as o
    left join reasons as r on r.connection_id = o.connection_id and r.remote_id = o.archive_reason_remote_id
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as application_id,
        {{ canonical_fk('s.connection_id', 's.contact_remote_id') }} as candidate_id,
        {{ canonical_fk('s.connection_id', 's.posting_remote_id') }} as job_id,
        coalesce(s.applied_at, s.remote_created_at) as applied_at,
        case when s.lifecycle not in ('active', 'hired') then s.archived_at end as rejected_at,
        case when s.lifecycle = 'hired' then s.archived_at end as hired_at,
        {{ canonical_fk('s.connection_id', 's.stage_remote_id') }} as current_stage_id,
        case when s.lifecycle not in ('active', 'hired') then s.archive_reason_name end as reject_reason,
        s.source_name as source,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as credited_to_user_id,
        {{ map_value('map_ats__application_status', 'lever', 's.lifecycle', 'status') }},
        {{ standard_columns('lever', named_custom_fields(ref('stg_lever__custom_questions'), 'application',
                                                   values='s.custom_question_values')) }}
    from s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
