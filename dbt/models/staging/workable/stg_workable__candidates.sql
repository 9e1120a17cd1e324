-- A Workable candidate is one person's application to one job (the same person applying to two jobs is two
-- candidates): it feeds both ats_candidates and ats_applications. Disqualified candidates stay listed.
with source as (
    {{ latest_raw(source('workable', 'candidates')) }}
)

select
    connection_id,
    remote_id,
    remote_updated_at,
    is_deleted,
    extracted_at,
    _dlt_load_id as _load_id,
    {{ iso_ts(json_str('payload', 'created_at')) }} as remote_created_at,
    {{ json_str('payload', 'firstname') }} as first_name,
    {{ json_str('payload', 'lastname') }} as last_name,
    {{ json_str('payload', 'headline') }} as headline,
    {{ json_str('payload', 'email') }} as email,
    {{ json_str('payload', 'phone') }} as phone,
    {{ json_str('payload', 'address') }} as address,
    {{ json_str('payload', 'profile_url') }} as profile_url,
    {{ json_str('payload', 'job.shortcode') }} as job_shortcode,
    {{ json_str('payload', 'stage') }} as stage_slug,
    {{ json_str('payload', 'stage_kind') }} as stage_kind,
    coalesce(cast({{ json_str('payload', 'disqualified') }} as boolean), false) as disqualified,
    {{ json_str('payload', 'disqualification_reason') }} as disqualification_reason,
    {{ json_str('payload', 'domain') }} as domain,
    -- `hired_at` is a day: midnight UTC, whatever the warehouse session's time zone.
    {{ iso_ts("case when length(" ~ json_str('payload', 'hired_at') ~ ") = 10 then "
              ~ json_str('payload', 'hired_at') ~ " || 'T00:00:00Z' else "
              ~ json_str('payload', 'hired_at') ~ " end") }} as hired_at
from source
