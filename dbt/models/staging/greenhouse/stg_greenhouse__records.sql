{{ config(materialized="table") }}

-- (A table: every Greenhouse staging view reads it, so the window functions run once per build.)
-- Every Greenhouse record's latest version, with deletes applied. Greenhouse has no delete feed: a record
-- is deleted when the latest completed key scan of its object (raw `<object>_key_scans`, marker row '*')
-- did not see it although its latest version was extracted before that scan started. Its deleted_at is
-- the scan's start (when the deletion was detected; the provider does not say when it happened).
{% set objects = ['candidates', 'applications', 'jobs', 'job_stages', 'scheduled_interviews', 'offers',
                  'departments', 'offices', 'users'] %}
with records as (
    {% for object in objects %}
    select '{{ object }}' as object, r.* from ({{ latest_raw(source('greenhouse', object)) }}) as r
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

scans as (
    {% for object in objects %}
    select '{{ object }}' as object, k.connection_id, k.remote_id, k.remote_updated_at as scan_started_at
    from ({{ latest_raw(source('greenhouse', object ~ '_key_scans')) }}) as k
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

latest_scan as (
    select object, connection_id, scan_started_at from scans where remote_id = '*'
),

flagged as (
    select
        r.object,
        r.connection_id,
        r.remote_id,
        r.remote_updated_at,
        r.payload,
        r.extracted_at,
        r._dlt_load_id as _load_id,
        r.is_deleted as deleted_by_provider,
        coalesce(ls.scan_started_at is not null
                 and r.extracted_at < ls.scan_started_at
                 and (sn.scan_started_at is null or sn.scan_started_at < ls.scan_started_at), false) as missing_from_scan,
        ls.scan_started_at
    from records as r
    left join latest_scan as ls on ls.object = r.object and ls.connection_id = r.connection_id
    left join scans as sn
        on sn.object = r.object and sn.connection_id = r.connection_id and sn.remote_id = r.remote_id
)

select
    object,
    connection_id,
    remote_id,
    remote_updated_at,
    payload,
    extracted_at,
    _load_id,
    deleted_by_provider or missing_from_scan as is_deleted,
    case
        when deleted_by_provider then remote_updated_at
        when missing_from_scan then scan_started_at
    end as deleted_at
from flagged
