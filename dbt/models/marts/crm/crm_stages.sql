{{ union_canonical('crm_stages', [
    'hubspot',
    'salesforce',
    'pipedrive',
]) }}
