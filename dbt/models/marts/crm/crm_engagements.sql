{{ union_canonical('crm_engagements', [
    'hubspot',
    'salesforce',
    'pipedrive',
]) }}
