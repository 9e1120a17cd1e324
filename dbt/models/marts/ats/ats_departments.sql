{{ union_canonical('ats_departments', [
    'greenhouse',
    'ashby',
    'lever',
]) }}
