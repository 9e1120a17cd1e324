{{ union_canonical('crm_engagements', [
    'pipedrive',
]) }}
