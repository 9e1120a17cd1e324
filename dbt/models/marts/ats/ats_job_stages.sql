{{ union_canonical('ats_job_stages', [
    'lever',
]) }}
