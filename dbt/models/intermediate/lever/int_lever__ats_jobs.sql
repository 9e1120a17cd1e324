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
        list_filter([
            case when department is not null then 'department:' || department end,
            case when team is not null then 'team:' || coalesce(department, '') || '/' || team end
        ], lambda x: x is not null) as department_keys,
        list_transform(
            list_distinct(list_filter(list_concat([location], coalesce(from_json(all_locations, '["VARCHAR"]'), [])),
                                      lambda x: x is not null)),
            lambda x: 'location:' || x) as office_keys
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
        to_json(list_transform(s.department_keys, lambda k: md5(s.connection_id || ':' || k))) as department_ids,
        to_json(list_transform(list_sort(s.office_keys), lambda k: md5(s.connection_id || ':' || k))) as office_ids,
        {{ lever_fk_list('s.connection_id', "to_json([s.hiring_manager_remote_id])") }} as hiring_manager_ids,
        {{ lever_fk_list('s.connection_id', "to_json([s.owner_remote_id])") }} as recruiter_ids,
        {{ standard_columns('lever') }}
    from s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
