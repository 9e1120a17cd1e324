{{ union_canonical('crm_contacts', [
    'hubspot',
    'salesforce',
    'pipedrive',
]) }}
