-- Lever postings are the jobs (type POSTING). Departments/offices are derived from the posting's
-- categories (see int_lever__ats_departments / int_lever__ats_offices for the ids).
with postings as (
    select * from {{ ref('stg_lever__postings') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

s as (
    select
        *,
        {{ json_list_of(["case when department is not null then 'department:' || department end",
                         "case when team is not null then 'team:' || coalesce(department, '') || '/' || team end"]) }}
            as department_keys
    from postings
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as job_id,
        s.name,
        s.code,
        s.description,
        {{ map_value('map_ats__job_status', 'lever', 's.state', 'status') }},
        'POSTING' as type,
        s.confidentiality = 'confidential' as confidential,
        {{ lever_fk_list('s.connection_id', 's.department_keys') }} as department_ids,
        {{ lever_office_ids('s.connection_id', 's.location', 's.all_locations') }} as office_ids,
        {{ lever_fk_list('s.connection_id', json_list_of(['s.hiring_manager_remote_id'])) }} as hiring_manager_ids,
        {{ lever_fk_list('s.connection_id', json_list_of(['s.owner_remote_id'])) }} as recruiter_ids,
        {{ standard_columns('lever') }}
    from s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
