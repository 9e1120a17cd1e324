{{ union_canonical('ats_users', [
    'greenhouse',
    'ashby',
    'lever',
]) }}
