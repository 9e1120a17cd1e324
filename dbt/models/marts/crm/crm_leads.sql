{{ union_canonical('crm_leads', [
    'salesforce',
]) }}
