{{ union_canonical('crm_notes', [
    'salesforce',
]) }}
