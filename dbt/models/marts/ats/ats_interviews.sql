{{ union_canonical('ats_interviews', [
    'greenhouse',
    'ashby',
    'lever',
]) }}
