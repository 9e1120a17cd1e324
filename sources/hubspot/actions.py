"""HubSpot write-back (API notes: sources/hubspot/README.md): batch update by record id and batch upsert by
a unique property, ≤ 100 inputs per call, partial failures as 207 with per-input errors.

Records the warehouse knows the HubSpot id of (`external_id`) are updated with `batch/update`; records to
create are sent to `batch/upsert` keyed on the unique custom property `canonry_external_id` (= the
canonical record key), so a retried batch converges instead of creating duplicates. HubSpot has no
idempotency keys: each input carries the record's idempotency key as `objectWriteTraceId`, which is how the
answer's results and errors are matched back to records. Property values are sent as strings; "" clears.
"""

from __future__ import annotations

from typing import Any

from canonry.runtime import ConnectionRuntime
from canonry.writeback import WriteOutcome, WriteRecord

BATCH_SIZE = 100
EXTERNAL_ID_PROPERTY = "canonry_external_id"
OBJECTS = ("contacts", "companies", "deals")


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class HubSpotWriter:
    batch_size = BATCH_SIZE

    def __init__(self, runtime: ConnectionRuntime, object_name: str) -> None:
        if object_name not in OBJECTS:
            raise ValueError(f"hubspot cannot write {object_name!r}")
        self.runtime, self.object = runtime, object_name
        self.session = runtime.session()
        self.base = f"{runtime.base_url}/crm/v3/objects/{object_name}"

    def write(self, records: list[WriteRecord]) -> list[WriteOutcome]:
        by_trace = {r.idempotency_key: r for r in records}
        updates = [{"id": r.external_id, "objectWriteTraceId": r.idempotency_key,
                    "properties": {k: _value(v) for k, v in r.fields.items()}} for r in records if r.external_id]
        upserts = [{"id": r.record_key, "idProperty": EXTERNAL_ID_PROPERTY, "objectWriteTraceId": r.idempotency_key,
                    "properties": {k: _value(v) for k, v in r.fields.items()}} for r in records if not r.external_id]
        outcomes: list[WriteOutcome] = []
        for operation, inputs in (("update", updates), ("upsert", upserts)):
            if inputs:
                body = self.session.post_json(f"{self.base}/batch/{operation}", json={"inputs": inputs})
                outcomes += self._outcomes(body, by_trace)
        return outcomes

    @staticmethod
    def _outcomes(body: dict, by_trace: dict[str, WriteRecord]) -> list[WriteOutcome]:
        out = []
        for result in body.get("results", []) or []:
            record = by_trace.get(result.get("objectWriteTraceId"))
            if record is not None:
                out.append(WriteOutcome(record.record_key, True, str(result.get("id")),
                                        details={"new": result.get("new")}))
        for error in body.get("errors", []) or []:
            context = error.get("context") or {}
            for trace in context.get("objectWriteTraceId", []) or []:
                record = by_trace.get(trace)
                if record is not None:
                    message = f"{error.get('category', 'ERROR')}: {error.get('message', '')}".strip()
                    out.append(WriteOutcome(record.record_key, False, record.external_id, message[:500]))
        return out

    def read(self, records: list[WriteRecord]) -> dict[str, dict]:
        known = [r for r in records if r.external_id]
        if not known:
            return {}
        properties = sorted({k for r in known for k in r.fields})
        body = self.session.post_json(f"{self.base}/batch/read", json={
            "inputs": [{"id": r.external_id} for r in known], "properties": properties})
        by_id = {str(o.get("id")): o.get("properties") or {} for o in body.get("results", []) or []}
        return {r.record_key: by_id[r.external_id] for r in known if r.external_id in by_id}


def writer(runtime: ConnectionRuntime, object_name: str) -> HubSpotWriter:
    return HubSpotWriter(runtime, object_name)
