-- code: requisition_id; description: notes; type: PROFILE for job templates, REQUISITION otherwise
-- (a Greenhouse job is a requisition; postings are a separate resource). Id lists hold canonical ids.
with jobs as (
    select * from {{ ref('stg_greenhouse__jobs') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as job_id,
        s.name,
        s.requisition_id as code,
        s.notes as description,
        {{ map_value('map_ats__job_status', 'greenhouse', 's.status', 'status') }},
        case when s.is_template then 'PROFILE' else 'REQUISITION' end as type,
        s.confidential,
        {% for column in ['department_ids', 'office_ids', 'hiring_manager_ids', 'recruiter_ids'] %}
        {{ json_map('s.' ~ column, none, canonical_id('s.connection_id', 'item')) }}
            as {{ column }},
        {% endfor %}
        {{ standard_columns('greenhouse', named_custom_fields(ref('stg_greenhouse__custom_fields'), 'job'),
                            's.deleted_at') }}
    from jobs as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
