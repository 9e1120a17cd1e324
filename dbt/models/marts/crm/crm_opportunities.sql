-- Incremental (delete+insert by the canonical id): a run recomputes only the rows whose staging rows changed
-- since the mart last saw their connection (union_canonical, macros/canonical.sql). An opportunity also
-- reads its stage (HubSpot: status; Salesforce: the stage id, matched by API name): an opportunity whose
-- stage id or status a changed stage alters is recomputed (lookups below: keep them in step with the
-- int_<provider>__crm_opportunities models).
-- amount_reporting is not incremental: the post-hook re-converts every row whose conversion the current
-- rates seed (reporting_currency_rates) or var reporting_currency change, since an incremental run recomputes
-- only the rows whose raw data changed (macros/currency.sql).
-- depends_on: {{ ref('reporting_currency_rates') }}
{{ config(materialized='incremental', unique_key='opportunity_id', incremental_strategy='delete+insert',
          on_schema_change='fail', post_hook="{{ reconvert_reporting_amounts() }}") }}

{{ union_canonical('crm_opportunities', [
    'hubspot',
    'salesforce',
    'pipedrive',
], lookups={
    'hubspot': [('stage_id', 'stg_hubspot__stages', ['status'])],
    'salesforce': [('stage_id', 'stg_salesforce__opportunity_stages', [])],
}) }}
