{{ union_canonical('ats_offers', [
    'greenhouse',
    'ashby',
    'lever',
]) }}
