-- A Workable candidate is also the application (same remote id): to its job (by shortcode), in its stage.
-- Status: stage kind `hired` -> HIRED, disqualified -> REJECTED, else ACTIVE. Workable lists no
-- disqualification time: rejected_at is the candidate's last update while disqualified (approximate).
with candidates as (
    select * from {{ ref('stg_workable__candidates') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

s as (
    select
        *,
        case when stage_kind = 'hired' then 'HIRED' when disqualified then 'REJECTED' else 'ACTIVE' end as lifecycle
    from candidates
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as application_id,
        {{ canonical_id('s.connection_id', 's.remote_id') }} as candidate_id,
        {{ canonical_fk('s.connection_id', 's.job_shortcode') }} as job_id,
        s.remote_created_at as applied_at,
        case when s.lifecycle = 'REJECTED' then s.remote_updated_at end as rejected_at,
        case when s.lifecycle = 'HIRED' then s.hired_at end as hired_at,
        {{ canonical_fk('s.connection_id', 's.stage_slug') }} as current_stage_id,
        case when s.lifecycle = 'REJECTED' then s.disqualification_reason end as reject_reason,
        s.domain as source,
        cast(null as varchar) as credited_to_user_id,
        s.lifecycle as status,
        {{ standard_columns('workable') }}
    from s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
