-- Deals: status is Pipedrive's own (open/won/lost; a deleted deal keeps the status it had), amount is
-- `value` in the deal's `currency`. close_date: the close time of a closed deal, else the expected date.
with deals as (
    select * from {{ ref('stg_pipedrive__deals') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as opportunity_id,
        s.name,
        cast(null as varchar) as description,
        s.amount,
        s.currency,
        {{ amount_in_reporting_currency('s.amount', 's.currency') }} as amount_reporting,
        {{ reporting_currency() }} as reporting_currency,
        {{ canonical_fk('s.connection_id', 's.organization_remote_id') }} as account_id,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ canonical_fk('s.connection_id', 's.stage_remote_id') }} as stage_id,
        case s.status when 'won' then 'WON' when 'lost' then 'LOST' else 'OPEN' end as status,
        coalesce(cast(s.close_time as date), s.expected_close_date) as close_date,
        cast(null as timestamptz) as last_activity_at,
        {{ standard_columns('pipedrive', named_custom_fields(ref('stg_pipedrive__custom_fields'), 'deal')) }}
    from deals as s
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
