{{ union_canonical('ats_offices', [
    'greenhouse',
    'ashby',
    'workable',
    'lever',
]) }}
