-- Offers of an opportunity (= application). sent_at: the sent document's upload time; closed_at: the
-- candidate's signature time; start_date: the `anticipated_start_date` offer field. An offer of a
-- deleted opportunity is deleted with it.
with offers as (
    select * from {{ ref('stg_lever__offers') }}
),

opportunities as (
    select connection_id, remote_id, is_deleted, remote_updated_at from {{ ref('stg_lever__opportunities') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

s as (
    select
        f.connection_id,
        f.remote_id,
        f.opportunity_remote_id,
        f.remote_created_at,
        case when coalesce(o.is_deleted, false) and not f.is_deleted then o.remote_updated_at
             else f.remote_updated_at end as remote_updated_at,
        f.is_deleted or coalesce(o.is_deleted, false) as is_deleted,
        f.extracted_at,
        f._load_id,
        {{ json_str('f.body', 'creator') }} as creator_remote_id,
        {{ json_str('f.body', 'status') }} as offer_status,
        {{ epoch_ms_ts(json_str('f.body', 'sentDocument.uploadedAt')) }} as sent_at,
        {{ epoch_ms_ts(json_str('f.body', 'signatures.candidate.signedAt')) }} as closed_at,
        (select {{ epoch_ms_ts(json_str('fld', 'value')) }}
         from (select {{ json_array_items('f.body', 'fields') }} as fld) as x
         where {{ json_str('fld', 'identifier') }} = 'anticipated_start_date'
         limit 1) as start_at
    from offers as f
    left join opportunities as o on o.connection_id = f.connection_id and o.remote_id = f.opportunity_remote_id
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as offer_id,
        {{ canonical_fk('s.connection_id', 's.opportunity_remote_id') }} as application_id,
        {{ canonical_fk('s.connection_id', 's.creator_remote_id') }} as creator_user_id,
        s.sent_at,
        s.closed_at,
        cast(timezone('UTC', s.start_at) as date) as start_date,
        {{ map_value('map_ats__offer_status', 'lever', 's.offer_status', 'status') }},
        {{ standard_columns('lever') }}
    from s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
