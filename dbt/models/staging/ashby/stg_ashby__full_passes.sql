-- The latest completed full pass (key scan) of each sync-token object, per connection.
with source as (
    {{ latest_raw(source('ashby', 'full_passes')) }}
)

select
    connection_id,
    remote_id as object_name,
    remote_updated_at as last_full_pass_at,
    {{ json_str('payload', 'reason') }} as reason,
    cast({{ json_str('payload', 'records') }} as integer) as records
from source
