-- Workable jobs are postings (remote_id: the shortcode). Offices are the jobs' locations
-- (int_workable__ats_offices). The job list names no hiring team: hiring managers and recruiters are empty.
with jobs as (
    select * from {{ ref('stg_workable__jobs') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as job_id,
        s.title as name,
        s.code,
        cast(null as varchar) as description,
        {{ map_value('map_workable__job_status', 'workable', 's.state', 'status') }},
        'POSTING' as type,
        false as confidential,
        {{ canonical_id_singleton_list('s.connection_id', 's.department_remote_id') }} as department_ids,
        {{ canonical_id_singleton_list('s.connection_id', "'location:' || s.location") }} as office_ids,
        {{ to_json_type("'[]'") }} as hiring_manager_ids,
        {{ to_json_type("'[]'") }} as recruiter_ids,
        {{ standard_columns('workable') }}
    from jobs as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
