{{ union_canonical('crm_tasks', [
    'pipedrive',
]) }}
