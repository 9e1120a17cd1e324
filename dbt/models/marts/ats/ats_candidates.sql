{{ union_canonical('ats_candidates', [
    'greenhouse',
    'ashby',
    'workable',
    'lever',
]) }}
