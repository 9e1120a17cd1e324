{{ union_canonical('ats_candidates', [
    'lever',
]) }}
