{{ union_canonical('ats_users', [
    'greenhouse',
    'ashby',
    'workable',
    'lever',
]) }}
