-- Status comes from the stage's semantics: a closed stage with probability 1 is WON, another closed
-- stage LOST, anything else OPEN (HubSpot's own hs_is_closed_won is derived the same way).
with deals as (
    select * from {{ ref('stg_hubspot__deals') }}
),

stages as (
    select * from {{ ref('stg_hubspot__stages') }}
),

connections as (
    select * from {{ source('canonry_ops', 'connections') }}
),

final as (
    select
        {{ canonical_id('s.connection_id', 's.remote_id') }} as opportunity_id,
        s.name,
        s.description,
        s.amount,
        s.currency,
        {{ amount_in_reporting_currency('s.amount', 's.currency') }} as amount_reporting,
        {{ reporting_currency() }} as reporting_currency,
        {{ canonical_fk('s.connection_id', 's.company_remote_id') }} as account_id,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ canonical_fk('s.connection_id', 's.stage_remote_id') }} as stage_id,
        case
            when st.is_closed and st.probability >= 1 then 'WON'
            when st.is_closed then 'LOST'
            else 'OPEN'
        end as status,
        s.close_date,
        s.last_activity_at,
        {{ standard_columns('hubspot', named_custom_fields(ref('stg_hubspot__custom_properties'), 'deals',
                                                       values='s.properties', only_defined=true)) }}
    from deals as s
    left join stages as st on st.connection_id = s.connection_id and st.remote_id = s.stage_remote_id
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
