{{ union_canonical('crm_leads', [
    'pipedrive',
]) }}
