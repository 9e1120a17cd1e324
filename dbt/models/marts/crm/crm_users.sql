{{ union_canonical('crm_users', [
    'hubspot',
    'salesforce',
    'pipedrive',
]) }}
