{{ union_canonical('crm_notes', [
    'pipedrive',
]) }}
