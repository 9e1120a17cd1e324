-- An Ashby job is a hiring effort (type REQUISITION); hiring managers and recruiters come from its
-- hiring team's roles. job.list carries no description or requisition code (null here).
with jobs as (
    select * from {{ ref('stg_ashby__jobs') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as job_id,
        s.name,
        cast(null as varchar) as code,
        cast(null as varchar) as description,
        {{ map_value('map_ats__job_status', 'ashby', 's.status', 'status') }},
        'REQUISITION' as type,
        s.confidential,
        {{ ashby_fk_list('s.connection_id', ashby_id_list(['s.department_remote_id'])) }} as department_ids,
        {{ ashby_fk_list('s.connection_id', adapter.dispatch('ashby_non_null', 'canonry')('s.location_remote_ids')) }} as office_ids,
        {{ ashby_fk_list('s.connection_id', ashby_team_user_ids('s.hiring_team', 'Hiring Manager')) }} as hiring_manager_ids,
        {{ ashby_fk_list('s.connection_id', ashby_team_user_ids('s.hiring_team', 'Recruiter')) }} as recruiter_ids,
        {{ standard_columns('ashby', named_custom_fields(ref('stg_ashby__custom_fields'), 'Job',
                                                   values='s.custom_field_values'),
                            's.deleted_at') }}
    from jobs as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
