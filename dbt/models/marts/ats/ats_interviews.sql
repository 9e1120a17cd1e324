{{ union_canonical('ats_interviews', [
    'ashby',
]) }}
