{{ union_canonical('ats_interviews', [
    'greenhouse',
    'ashby',
    'workable',
    'lever',
]) }}
