{{ union_canonical('crm_opportunities', [
    'hubspot',
    'salesforce',
    'pipedrive',
]) }}
