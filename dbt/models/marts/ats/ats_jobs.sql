{{ union_canonical('ats_jobs', [
    'greenhouse',
    'ashby',
    'workable',
    'lever',
]) }}
