-- Stages belong to interview plans, which jobs share: they are org-wide stages (canonical job_id null).
with base as (
    {{ ashby_raw('interview_stages') }}
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    {{ ashby_deletion("cast(" ~ json_str('payload', 'isArchived') ~ " as boolean)") }},
    extracted_at,
    _load_id,
    cast(null as timestamptz) as remote_created_at,
    {{ json_str('payload', 'title') }} as name,
    cast({{ json_str('payload', 'orderInInterviewPlan') }} as integer) as stage_order,
    {{ json_str('payload', 'type') }} as stage_type,
    {{ json_str('payload', 'interviewPlanId') }} as interview_plan_remote_id
from base
