{{ union_canonical('crm_tasks', [
    'salesforce',
]) }}
