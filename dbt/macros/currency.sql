{# Conversion of CRM amounts to one reporting currency (docs/analyst-guide.md, "Pipeline value"): the dbt var
   `reporting_currency` (default USD) names it, the seed `reporting_currency_rates` (replaceable by the user)
   holds the rates. Used by every CRM's int_<provider>__crm_opportunities and by crm_opportunities' post-hook
   (which re-converts the rows an incremental run did not touch), so both convert the same way. #}

{# The reporting currency, as a SQL literal (upper-cased ISO 4217 code). #}
{% macro reporting_currency() -%}
    '{{ var("reporting_currency", "USD") | trim | upper }}'
{%- endmacro %}

{# `amount` (decimal) in the reporting currency: exact decimal arithmetic (amount * rate, no float), rounded to
   cents (half away from zero, as DuckDB and PostgreSQL both round decimals); rate 1 when the amount already is
   in the reporting currency; null when the seed has no rate for its currency (the warn test
   reporting_currency_rates_missing names those currencies). `currency` must be qualified when used inside an
   update (the rate lookup has a `currency` column of its own). #}
{% macro amount_in_reporting_currency(amount, currency) -%}
    cast(round(cast({{ amount }} as decimal(18, 2)) * (
        case
            when upper({{ currency }}) = {{ reporting_currency() }} then cast(1 as decimal(18, 8))
            else (select max(rates.rate) from {{ ref('reporting_currency_rates') }} as rates
                  where upper(rates.currency) = upper({{ currency }})
                    and upper(rates.reporting_currency) = {{ reporting_currency() }})
        end), 2) as decimal(18, 2))
{%- endmacro %}

{# Post-hook of crm_opportunities: re-convert every row whose converted amount or reporting currency differs
   from what the current rates and var give. An incremental run recomputes only the opportunities whose raw
   rows changed (union_canonical), so a replaced rates seed or another `reporting_currency` would otherwise
   leave the other rows converted with the old ones; the conversion is therefore not incremental: it is
   applied to the whole table after each build (only differing rows are written: a no-op when nothing moved). #}
{% macro reconvert_reporting_amounts() -%}
    update {{ this }} as converted
    set amount_reporting = {{ amount_in_reporting_currency('converted.amount', 'converted.currency') }},
        reporting_currency = {{ reporting_currency() }}
    where converted.amount_reporting is distinct from
              {{ amount_in_reporting_currency('converted.amount', 'converted.currency') }}
       or converted.reporting_currency is distinct from {{ reporting_currency() }}
{%- endmacro %}
