{{ union_canonical('ats_jobs', [
    'ashby',
]) }}
