{{ union_canonical('ats_departments', [
    'lever',
]) }}
