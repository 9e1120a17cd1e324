{{ union_canonical('ats_departments', [
    'ashby',
]) }}
