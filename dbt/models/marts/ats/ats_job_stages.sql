{{ union_canonical('ats_job_stages', [
    'greenhouse',
    'ashby',
    'workable',
    'lever',
]) }}
