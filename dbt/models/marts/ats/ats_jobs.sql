{{ union_canonical('ats_jobs', [
    'lever',
]) }}
