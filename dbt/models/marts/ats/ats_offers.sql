{{ union_canonical('ats_offers', [
    'lever',
]) }}
