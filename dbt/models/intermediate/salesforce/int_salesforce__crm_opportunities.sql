-- Status from IsClosed/IsWon (Salesforce derives both from the stage). Amount is in the record's
-- CurrencyIsoCode (multi-currency orgs) or the org's default currency (var salesforce_default_currency).
with opportunities as (
    select * from {{ ref('stg_salesforce__opportunities') }}
),

stages as (
    select * from {{ ref('stg_salesforce__opportunity_stages') }}
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
        coalesce(s.currency, '{{ var("salesforce_default_currency", "USD") }}') as currency,
        {{ amount_in_reporting_currency('s.amount',
                                        "coalesce(s.currency, '" ~ var('salesforce_default_currency', 'USD') ~ "')") }}
            as amount_reporting,
        {{ reporting_currency() }} as reporting_currency,
        {{ canonical_fk('s.connection_id', 's.account_remote_id') }} as account_id,
        {{ canonical_fk('s.connection_id', 's.owner_remote_id') }} as owner_user_id,
        {{ canonical_fk('s.connection_id', 'st.remote_id') }} as stage_id,
        case
            when s.is_closed and s.is_won then 'WON'
            when s.is_closed then 'LOST'
            else 'OPEN'
        end as status,
        s.close_date,
        s.last_activity_at,
        {{ standard_columns('salesforce', named_custom_fields(ref('stg_salesforce__custom_fields'), 'Opportunity',
                                                          values='s.fields', only_defined=true)) }}
    from opportunities as s
    left join stages as st
        on st.connection_id = s.connection_id and lower(st.api_name) = lower(s.stage_name) and not st.is_deleted
    left join connections as c on c.connection_id = s.connection_id
)

select * from final
