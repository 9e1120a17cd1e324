{{ union_canonical('crm_leads', [
    'hubspot',
    'salesforce',
    'pipedrive',
]) }}
