-- One row per interview ever seen. Lever lists interviews per opportunity only; each raw row is one read of
-- one opportunity's interviews (remote_id = the opportunity id, stamped with its updatedAt). An interview is
-- deleted when the latest read of its opportunity no longer contains it (deleted_at = that read's stamp).
with versions as (
    {{ raw_versions(source('lever', 'interviews')) }}
),

snapshots as (
    select
        *,
        row_number() over (
            partition by connection_id, remote_id
            order by remote_updated_at desc nulls last, _dlt_load_id desc, extracted_at desc
        ) as recency,
        max(remote_updated_at) over (partition by connection_id, remote_id) as latest_read_at
    from versions
),

items as (
    select
        connection_id,
        remote_id as opportunity_remote_id,
        remote_updated_at as read_at,
        latest_read_at,
        recency,
        extracted_at,
        _dlt_load_id,
        {{ lever_json_items('payload') }}
    from snapshots
),

latest_item as (
    {{ latest_per_key("*, " ~ json_str('item', 'id') ~ " as remote_id", 'from items',
                      'read_at desc nulls last, _dlt_load_id desc, extracted_at desc',
                      keys=['connection_id', json_str('item', 'id')]) }}
)

select
    connection_id,
    remote_id,
    opportunity_remote_id,
    recency > 1 as is_deleted,
    case when recency > 1 then latest_read_at else read_at end as remote_updated_at,
    {{ epoch_ms_ts(json_str('item', 'createdAt')) }} as remote_created_at,
    extracted_at,
    _dlt_load_id as _load_id,
    cast(item as varchar) as body
from latest_item
