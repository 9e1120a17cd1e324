{{ union_canonical('ats_candidates', [
    'greenhouse',
    'ashby',
    'lever',
]) }}
