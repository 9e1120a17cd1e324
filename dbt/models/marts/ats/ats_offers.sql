{{ union_canonical('ats_offers', [
    'ashby',
]) }}
