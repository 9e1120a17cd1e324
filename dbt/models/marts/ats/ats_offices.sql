{{ union_canonical('ats_offices', [
    'ashby',
]) }}
