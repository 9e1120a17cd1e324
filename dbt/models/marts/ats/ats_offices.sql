{{ union_canonical('ats_offices', [
    'lever',
]) }}
