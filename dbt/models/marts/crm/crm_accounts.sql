{{ union_canonical('crm_accounts', [
    'hubspot',
    'pipedrive',
]) }}
