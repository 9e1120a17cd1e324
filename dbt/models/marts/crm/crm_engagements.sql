{{ union_canonical('crm_engagements', [
    'salesforce',
]) }}
