{{ union_canonical('ats_users', [
    'lever',
]) }}
