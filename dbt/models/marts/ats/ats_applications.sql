{{ union_canonical('ats_applications', [
    'greenhouse',
    'ashby',
    'workable',
    'lever',
]) }}
