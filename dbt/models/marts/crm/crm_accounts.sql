{{ union_canonical('crm_accounts', [
    'hubspot',
    'salesforce',
    'pipedrive',
]) }}
