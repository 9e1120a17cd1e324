{{ union_canonical('ats_applications', [
    'ashby',
]) }}
