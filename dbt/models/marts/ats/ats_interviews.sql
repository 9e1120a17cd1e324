{{ union_canonical('ats_interviews', [
    'lever',
]) }}
