{{ union_canonical('crm_tasks', [
    'hubspot',
    'salesforce',
    'pipedrive',
]) }}
