{{ union_canonical('ats_applications', [
    'lever',
]) }}
