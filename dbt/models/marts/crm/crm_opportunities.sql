{{ union_canonical('crm_opportunities', [
    'hubspot',
    'pipedrive',
]) }}
