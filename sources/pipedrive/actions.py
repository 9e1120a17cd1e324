"""Pipedrive write-back (API notes: sources/pipedrive/README.md): one request per record, API v2.

Pipedrive has no batch write endpoint and no upsert: a record with a Pipedrive id (`external_id`) is
`PATCH /api/v2/{object}/{id}`, one without is created with `POST /api/v2/{object}`. Standard fields go at
the top level; any other field is a custom field and goes into `custom_fields` under its key (Pipedrive
names custom fields by a 40-character hash). A refusal (400/404/422) is that record's rejection; any other
failure stops the run (the engine keeps the batch in doubt and settles it by reading back).
"""

from __future__ import annotations

import re

from canonry.errors import CanonryError
from canonry.runtime import ConnectionRuntime
from canonry.writeback import WriteOutcome, WriteRecord
from sources.pipedrive.helpers import session_for

BATCH_SIZE = 25   # records logged per engine batch; each record is still its own request
STANDARD_FIELDS: dict[str, tuple[str, ...]] = {
    "persons": ("name", "first_name", "last_name", "owner_id", "org_id", "emails", "phones", "visible_to",
                "label_ids", "job_title"),
    "organizations": ("name", "owner_id", "visible_to", "label_ids", "address", "website", "industry",
                      "employee_count"),
    "deals": ("title", "owner_id", "person_id", "org_id", "pipeline_id", "stage_id", "value", "currency",
              "status", "probability", "lost_reason", "visible_to", "expected_close_date", "label_ids"),
}
REJECTED_STATUSES = (400, 404, 410, 422)
FIELDS: dict[str, dict[str, str]] = {   # writable standard fields and their type (reverse_etl/coerce.py)
    "persons": {"name": "text:255", "first_name": "text:255", "last_name": "text:255", "owner_id": "number",
                "emails": "email",
                "org_id": "number", "job_title": "text:255", "visible_to": "number"},
    "organizations": {"name": "text:255", "owner_id": "number", "website": "text:255", "industry": "text:255",
                      "employee_count": "number", "visible_to": "number"},
    "deals": {"title": "text:255", "owner_id": "number", "person_id": "number", "org_id": "number",
              "value": "number", "currency": "text:3", "status": "enum:open|won|lost", "probability": "number",
              "expected_close_date": "date", "stage_id": "number", "pipeline_id": "number"},
}
# No upsert in Pipedrive: a natural key is searched (`find`: GET /api/v2/{object}/search, exact match), then the
# record is updated by id or created. Key name -> the search's `fields` value.
NATURAL_KEYS: dict[str, tuple[str, ...]] = {"persons": ("email",), "organizations": ("name",)}
LOOKS_UP_KEYS = True   # natural keys are found with `find` before writing (canonry/reverse_etl/matching.py)
# What identifies a record a crashed push may have created (POST sent, its id never recorded): the re-run
# searches it before creating again. (CRM field of the sync, search key.)
RECOVERY_KEYS: dict[str, tuple[str, str]] = {"persons": ("emails", "email"), "organizations": ("name", "name")}
SEARCH_LIMIT = 100
EXTERNAL_ID_FIELD = None                           # no external-id upsert either
CUSTOM_FIELD_KEY = re.compile(r"^[0-9a-f]{40}$")   # Pipedrive names custom fields by a 40-hex key


def is_custom_field(name: str) -> bool:
    return bool(CUSTOM_FIELD_KEY.match(name))


class PipedriveWriter:
    batch_size = BATCH_SIZE

    def __init__(self, runtime: ConnectionRuntime, object_name: str) -> None:
        if object_name not in STANDARD_FIELDS:
            raise ValueError(f"pipedrive cannot write {object_name!r}")
        self.runtime, self.object = runtime, object_name
        self.session = session_for(runtime)
        self.base = f"{runtime.base_url}/api/v2/{object_name}"

    def body(self, record: WriteRecord) -> dict:
        standard = STANDARD_FIELDS[self.object]
        body = {k: v for k, v in record.fields.items() if k in standard}
        custom = {k: v for k, v in record.fields.items() if k not in standard}
        if custom:
            body["custom_fields"] = custom
        if isinstance(body.get("emails"), str):   # a model column holds one address; v2 takes a list of them
            body["emails"] = [{"value": body["emails"], "primary": True, "label": "work"}]
        return body

    def recovery_key(self, fields: dict) -> tuple[str, str] | None:
        """(search key, value) that finds the record these fields would create, if the sync maps it."""
        crm_field, key = RECOVERY_KEYS.get(self.object, (None, None))
        value = fields.get(crm_field) if crm_field else None
        return (key, str(value)) if key and value not in (None, "") else None

    def find(self, key: str, values: list[str]) -> dict[str, list[str]]:
        """Ids per lower-cased value: `GET /api/v2/{object}/search?term=&fields=&exact_match=true`, one search
        per value (Pipedrive has no batch lookup), every page (`additional_data.next_cursor`). Exact matches
        are case-insensitive at Pipedrive; they are compared here again on the searched field."""
        found: dict[str, list[str]] = {}
        for value in sorted({v.lower() for v in values}):
            params = {"term": value, "fields": key, "exact_match": "true", "limit": SEARCH_LIMIT}
            ids: list[str] = []
            while True:
                answer = self.session.get_json(f"{self.base}/search", params=params)
                data = answer.get("data") or {}
                for hit in data.get("items") or []:
                    item = hit.get("item") or {}
                    held = item.get("emails") or [] if key == "email" else [item.get(key)]
                    if any(str(v).lower() == value for v in held if v is not None):
                        ids.append(str(item["id"]))
                cursor = (answer.get("additional_data") or {}).get("next_cursor")
                if not cursor:
                    break
                params = {**params, "cursor": cursor}
            if ids:
                found[value] = sorted(set(ids), key=int)
        return found

    def write(self, records: list[WriteRecord]) -> list[WriteOutcome]:
        out = []
        for record in records:
            try:
                if record.external_id:
                    answer = self.session.request("PATCH", f"{self.base}/{record.external_id}",
                                                  json=self.body(record))._canonry_json
                else:
                    answer = self.session.post_json(self.base, json=self.body(record))
            except CanonryError as exc:
                if exc.status in REJECTED_STATUSES:
                    out.append(WriteOutcome(record.record_key, False, record.external_id, exc.detail[:500]))
                    continue
                raise
            data = answer.get("data") if isinstance(answer, dict) else None
            out.append(WriteOutcome(record.record_key, True, str((data or {}).get("id", record.external_id))))
        return out

    def remove(self, records: list[WriteRecord], hard: bool = False) -> list[WriteOutcome]:
        """`DELETE /api/v2/{object}/{id}` per record (Pipedrive marks it deleted; purged after 30 days);
        a record already gone (404/410) counts as removed."""
        out = []
        for record in records:
            if not record.external_id:
                out.append(WriteOutcome(record.record_key, False, None, "no Pipedrive id to delete"))
                continue
            try:
                self.session.request("DELETE", f"{self.base}/{record.external_id}")
            except CanonryError as exc:
                if exc.status in (404, 410):
                    out.append(WriteOutcome(record.record_key, True, record.external_id))
                    continue
                if exc.status in REJECTED_STATUSES:
                    out.append(WriteOutcome(record.record_key, False, record.external_id, exc.detail[:500]))
                    continue
                raise
            out.append(WriteOutcome(record.record_key, True, record.external_id))
        return out

    def read(self, records: list[WriteRecord]) -> dict[str, dict]:
        known = [r for r in records if r.external_id]
        out: dict[str, dict] = {}
        for start in range(0, len(known), 100):
            chunk = known[start:start + 100]
            answer = self.session.get_json(self.base, params={"ids": ",".join(r.external_id for r in chunk),
                                                              "limit": 100})
            by_id = {str(item["id"]): item for item in answer.get("data") or []}
            for record in chunk:
                item = by_id.get(record.external_id)
                if item is not None:
                    emails = [e.get("value") for e in item.get("emails") or [] if isinstance(e, dict)]
                    primary = next((e.get("value") for e in item.get("emails") or []
                                    if isinstance(e, dict) and e.get("primary")), emails[0] if emails else None)
                    out[record.record_key] = {**item, **(item.get("custom_fields") or {}),
                                              **({"emails": primary} if "emails" in item else {})}
        return out


def writer(runtime: ConnectionRuntime, object_name: str) -> PipedriveWriter:
    return PipedriveWriter(runtime, object_name)
