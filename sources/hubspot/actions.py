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
# Writable properties per object and their type (canonry/reverse_etl/coerce.py); custom properties
# (`canonry_*`) are writable too. Read-only ones (hs_object_id, createdate, ...) are absent on purpose.
FIELDS: dict[str, dict[str, str]] = {
    "contacts": {"email": "email", "firstname": "text:255", "lastname": "text:255", "phone": "text:64",
                 "jobtitle": "text:255", "company": "text:255", "hubspot_owner_id": "id",
                 "lifecyclestage": "enum:subscriber|lead|marketingqualifiedlead|salesqualifiedlead|opportunity|"
                                   "customer|evangelist|other",
                 "canonry_lead_score": "number", EXTERNAL_ID_PROPERTY: "text:255"},
    "companies": {"name": "text:255", "domain": "text:255", "industry": "text:255", "hubspot_owner_id": "id",
                  "numberofemployees": "number", "annualrevenue": "number", "canonry_lead_score": "number",
                  EXTERNAL_ID_PROPERTY: "text:255"},
    "deals": {"dealname": "text:255", "amount": "number", "closedate": "date", "dealstage": "text:255",
              "pipeline": "text:255", "hubspot_owner_id": "id", EXTERNAL_ID_PROPERTY: "text:255"},
}
NATURAL_KEYS: dict[str, tuple[str, ...]] = {"contacts": ("email",)}   # unique properties HubSpot upserts by


def is_custom_field(name: str) -> bool:
    return name.startswith("canonry_")


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

        def properties(record: WriteRecord) -> dict:
            return {k: _value(v) for k, v in record.fields.items()}

        updates = [{"id": r.external_id, "objectWriteTraceId": r.idempotency_key, "properties": properties(r)}
                   for r in records if r.external_id]
        # A natural key (contact email) is HubSpot's own upsert key; mode `update` addresses it without creating.
        updates += [{"id": r.match[1], "idProperty": r.match[0], "objectWriteTraceId": r.idempotency_key,
                     "properties": properties(r)} for r in records if not r.external_id and r.match and not r.create]
        upserts = [{"id": r.match[1] if r.match else r.record_key,
                    "idProperty": r.match[0] if r.match else EXTERNAL_ID_PROPERTY,
                    "objectWriteTraceId": r.idempotency_key, "properties": properties(r)}
                   for r in records if not r.external_id and (r.create or not r.match)]
        outcomes: list[WriteOutcome] = []
        for operation, inputs in (("update", updates), ("upsert", upserts)):
            if inputs:
                body = self.session.post_json(f"{self.base}/batch/{operation}", json={"inputs": inputs})
                outcomes += self._outcomes(body, by_trace)
        return outcomes

    def remove(self, records: list[WriteRecord], hard: bool = False) -> list[WriteOutcome]:
        """HubSpot archives (the API's delete; restorable for 90 days) — `hard` changes nothing here."""
        known = [r for r in records if r.external_id]
        if known:
            self.session.request("POST", f"{self.base}/batch/archive", expect_json=False,
                                 json={"inputs": [{"id": r.external_id} for r in known]})
        return [WriteOutcome(r.record_key, bool(r.external_id), r.external_id,
                             None if r.external_id else "no HubSpot id to archive") for r in records]

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
