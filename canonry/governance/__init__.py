"""Governance: who may see which personal data, how long it is kept, how one person's data is found, exported
and erased, and who moved which data where (docs/GOVERNANCE.md).

* `audit` — `ops.audit_log`, the append-only trail of data movement (syncs, pushes, API reads, queries,
  DSAR and retention actions); `canonry audit --since`.
* `dsar` — `canonry dsar find|export|erase`: one person's data across raw, staging, canonical, ops and the
  files of the data dir; erasure leaves a tombstone that later syncs honour.
* `raw_retention` — `canonry retention apply`: superseded raw versions older than a window go, every
  record's latest version stays (replay still rebuilds canonical).
* `masking` — the `canonical_masked` views analysts and the SQL guard read (pii pseudonymised, sensitive_pii
  nulled).

The classes themselves live in the one contract, canonry/canonical.py (`column_doc(...).classification`).
"""
