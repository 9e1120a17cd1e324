{{ union_canonical('ats_candidates', [
    'ashby',
]) }}
