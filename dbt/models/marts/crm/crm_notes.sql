{{ union_canonical('crm_notes', [
    'hubspot',
    'salesforce',
    'pipedrive',
]) }}
