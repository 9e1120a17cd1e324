{{ union_canonical('ats_departments', [
    'greenhouse',
    'ashby',
    'workable',
    'lever',
]) }}
