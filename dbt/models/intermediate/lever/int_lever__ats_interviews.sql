-- Interviews of an opportunity (= application). Lever has no interview status: it is derived as
-- canceled (canceledAt set), scheduled (ends in the future), complete (feedback forms exist) or
-- awaiting_feedback, then mapped through seed map_ats__interview_status. An interview of a deleted
-- opportunity is deleted with it.
with interviews as (
    select * from {{ ref('stg_lever__interviews') }}
),

opportunities as (
    select connection_id, remote_id, is_deleted, remote_updated_at from {{ ref('stg_lever__opportunities') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

s as (
    select
        i.connection_id,
        i.remote_id,
        i.opportunity_remote_id,
        i.remote_created_at,
        case when coalesce(o.is_deleted, false) and not i.is_deleted then o.remote_updated_at
             else i.remote_updated_at end as remote_updated_at,
        i.is_deleted or coalesce(o.is_deleted, false) as is_deleted,
        i.extracted_at,
        i._load_id,
        {{ json_str('i.body', 'stage') }} as stage_remote_id,
        {{ json_str('i.body', 'user') }} as organizer_remote_id,
        {{ json_part('i.body', 'interviewers') }} as interviewers,
        {{ json_str('i.body', 'location') }} as location,
        {{ epoch_ms_ts(json_str('i.body', 'date')) }} as start_at,
        {{ epoch_ms_ts(json_str('i.body', 'date')) }}
            + {{ ms_interval("60000 * cast(coalesce(" ~ json_str('i.body', 'duration') ~ ", '0') as bigint)") }} as end_at,
        {{ json_str('i.body', 'canceledAt') }} is not null as canceled,
        coalesce({{ json_length(json_part('i.body', 'feedbackForms')) }}, 0) > 0 as has_feedback
    from interviews as i
    left join opportunities as o on o.connection_id = i.connection_id and o.remote_id = i.opportunity_remote_id
),

derived as (
    select
        *,
        case
            when canceled then 'canceled'
            when end_at > current_timestamp then 'scheduled'
            when has_feedback then 'complete'
            else 'awaiting_feedback'
        end as lever_status
    from s
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as interview_id,
        {{ canonical_fk('s.connection_id', 's.opportunity_remote_id') }} as application_id,
        {{ canonical_fk('s.connection_id', 's.stage_remote_id') }} as job_stage_id,
        {{ canonical_fk('s.connection_id', 's.organizer_remote_id') }} as organizer_user_id,
        {{ lever_fk_list('s.connection_id', 's.interviewers', 'id') }} as interviewer_user_ids,
        s.location,
        s.start_at,
        s.end_at,
        {{ map_value('map_ats__interview_status', 'lever', 's.lever_status', 'status') }},
        {{ standard_columns('lever') }}
    from derived as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
