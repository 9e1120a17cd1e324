-- Currencies of CRM amounts that the seed reporting_currency_rates gives no rate to the reporting currency
-- (var reporting_currency) for: their opportunities' amount_reporting is null. One row per missing currency
-- (its name, the reporting currency, how many opportunities). Warn, never fail: add the rate to the seed.
{{ config(severity='warn') }}

select o.currency as missing_currency, {{ reporting_currency() }} as reporting_currency,
       count(*) as opportunities
from {{ ref('crm_opportunities') }} as o
where o.amount is not null and o.currency is not null and o.amount_reporting is null
group by o.currency
