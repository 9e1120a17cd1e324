{{ union_canonical('ats_users', [
    'ashby',
]) }}
