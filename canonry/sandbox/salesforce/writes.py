"""Salesforce sandbox writes: sObject create/update/delete/upsert-by-external-id, sObject Collections,
injected per-record failures (for reverse-ETL tests) and the write log.

Single-record errors are Salesforce's JSON array `[{message, errorCode, fields}]`; collection results are
per record, in request order, `{id, success, errors: [{statusCode, message, fields}], created}`; with
`allOrNone` a single failure rolls every record back (`ALL_OR_NONE_OPERATION_ROLLED_BACK`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from canonry.sandbox.engine import utcnow
from canonry.sandbox.salesforce.objects import FIELDS, field_map, object_of_id

COLLECTION_MAX = 200
CREATE_DEFAULTS: dict[str, dict[str, Any]] = {
    "Lead": {"Status": "Open - Not Contacted", "IsConverted": False},
    "Task": {"Status": "Not Started", "Priority": "Normal", "TaskSubtype": "Task"},
    "User": {"IsActive": True},
    "Note": {"IsPrivate": False},
}


class WriteError(Exception):
    def __init__(self, code: str, message: str, fields: list[str] | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.fields, self.status = code, message, fields or [], status

    def body(self) -> dict:
        return {"message": self.message, "errorCode": self.code, "fields": self.fields}

    def collection_body(self) -> dict:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


@dataclass
class FailureRule:
    """Fail writes of `object` whose `field` equals `value` (or every write when field is None)."""

    object: str
    field: str | None = None
    value: Any = None
    errorCode: str = "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    message: str = "Rejected by a validation rule"
    fields: list[str] = dataclasses.field(default_factory=list)
    remaining: int | None = None   # fail this many times, then succeed (None: always)
    ids: list[str] = dataclasses.field(default_factory=list)   # only writes to these record ids (updates)

    def matches(self, object_name: str, values: dict, record_id: str | None = None) -> bool:
        if self.object != object_name or self.remaining == 0:
            return False
        if self.ids and record_id not in self.ids:
            return False
        return self.field is None or values.get(self.field) == self.value


class WriteMixin:
    """Write paths of the simulator (uses its collections, render and lock)."""

    write_failures: list[FailureRule]
    writes: list[dict]

    # -- validation -------------------------------------------------------------------------------
    def _check_fields(self, object_name: str, values: dict, creating: bool, record_id: str | None = None) -> dict:
        fields = field_map(object_name)
        lower = {name.lower(): name for name in fields}
        clean = {}
        for key, value in values.items():
            if key == "attributes":
                continue
            name = lower.get(key.lower())
            if name is None:
                raise WriteError("INVALID_FIELD", f"No such column '{key}' on sobject of type {object_name}", [key])
            if fields[name].system and not (name == "Id" and not creating):
                raise WriteError("INVALID_FIELD_FOR_INSERT_UPDATE",
                                 f"Unable to create/update fields: {name}. Please check the security settings of "
                                 "this field and verify that it is read/write for your profile or permission set.",
                                 [name])
            if name != "Id":
                clean[name] = value
        if creating:
            missing = [f.name for f in FIELDS[object_name] if f.required and clean.get(f.name) in (None, "")]
            if missing:
                raise WriteError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                                 missing)
        else:
            emptied = [n for n, v in clean.items() if v in (None, "") and fields[n].required]
            if emptied:
                raise WriteError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(emptied)}]",
                                 emptied)
        for rule in self.write_failures:
            if rule.matches(object_name, clean, record_id):
                if rule.remaining is not None:
                    rule.remaining -= 1
                raise WriteError(rule.errorCode, rule.message, list(rule.fields))
        return clean

    def _log(self, operation: str, object_name: str, record_id: str | None, ok: bool, values: dict,
             error: WriteError | None = None, external: tuple[str, str] | None = None) -> None:
        self.writes.append({"at": utcnow().isoformat(), "operation": operation, "object": object_name,
                            "id": record_id, "success": ok, "fields": values,
                            "external_id": {"field": external[0], "value": external[1]} if external else None,
                            "error": error.body() if error else None})

    # -- primitives (raise WriteError) ------------------------------------------------------------
    def create_record(self, object_name: str, values: dict) -> str:
        clean = self._check_fields(object_name, values, creating=True)
        collection = self.collections[object_name]
        record = {f.name: None for f in FIELDS[object_name] if not f.system}
        record.update(CREATE_DEFAULTS.get(object_name, {}))
        if "OwnerId" in record and not clean.get("OwnerId"):
            record["OwnerId"] = self.collections["User"].id_of(0)
        record.update(clean)
        index = collection.create(lambda _i: record, utcnow())
        return collection.id_of(index)

    def _alive_index(self, object_name: str, record_id: str) -> int:
        collection = self.collections[object_name]
        index = collection.index_of(record_id) if record_id else None
        if index is None and record_id and len(record_id) == 15:
            index = collection.parse_id(record_id)
            index = index if index is not None and 0 <= index < collection.size else None
        if index is None or self.is_purged(object_name, index):
            raise WriteError("NOT_FOUND", "The requested resource does not exist", status=404)
        if not collection.is_alive(index):
            raise WriteError("ENTITY_IS_DELETED", "entity is deleted")
        return index

    def update_record(self, object_name: str, record_id: str, values: dict) -> str:
        index = self._alive_index(object_name, record_id)
        clean = self._check_fields(object_name, values, creating=False,
                                   record_id=self.collections[object_name].id_of(index))
        collection = self.collections[object_name]

        def apply(record: dict) -> dict:
            record.update(clean)
            return record
        collection.update(index, apply, utcnow())
        return collection.id_of(index)

    def delete_record(self, object_name: str, record_id: str) -> str:
        index = self._alive_index(object_name, record_id)
        collection = self.collections[object_name]
        collection.delete(index, utcnow())
        return collection.id_of(index)

    def find_by_external(self, object_name: str, field_name: str, value: str) -> list[int]:
        """Indexes of alive records whose external-id field equals value (base records carry none)."""
        collection = self.collections[object_name]
        with collection.lock:
            changed = list(collection.changes.items())
        return [i for i, e in changed if e.deleted_at is None and str(e.record.get(field_name)) == str(value)]

    def external_field(self, object_name: str, written: str) -> str:
        fields = field_map(object_name)
        name = next((n for n in fields if n.lower() == written.lower()), None)
        if name is None or not (fields[name].external_id or name == "Id"):
            raise WriteError("NOT_FOUND", f"Provided external ID field does not exist or is not accessible: "
                             f"{written}", status=404)
        return name

    def upsert_record(self, object_name: str, ext_field: str, value: str, values: dict,
                      update_only: bool = False) -> tuple[str, bool]:
        """-> (id, created). Raises WriteError (status 300 when the value matches several records)."""
        matches = self.find_by_external(object_name, ext_field, value)
        body = {k: v for k, v in values.items() if k != "attributes" and k.lower() != ext_field.lower()}
        if len(matches) > 1:
            raise WriteError("MULTIPLE_CHOICES", f"The value '{value}' of {ext_field} matches "
                             f"{len(matches)} records", [ext_field], status=300)
        if matches:
            record_id = self.collections[object_name].id_of(matches[0])
            return self.update_record(object_name, record_id, body), False
        if update_only:
            raise WriteError("NOT_FOUND", "The requested resource does not exist", status=404)
        return self.create_record(object_name, {**body, ext_field: value}), True

    # -- collections ------------------------------------------------------------------------------
    def collection_write(self, operation: str, records: list[dict], all_or_none: bool,
                         object_name: str | None = None, ext_field: str | None = None) -> list[dict]:
        """Per-record results in request order; all-or-none validates everything before writing."""
        if len(records) > COLLECTION_MAX:
            raise WriteError("EXCEEDED_ID_LIMIT", f"Maximum number of records is {COLLECTION_MAX}")
        plan: list[tuple[str, dict]] = []
        errors: list[WriteError | None] = []
        for record in records:
            kind = (record.get("attributes") or {}).get("type") if isinstance(record, dict) else None
            try:
                if operation == "delete":
                    kind = object_of(record)
                    errors.append(None)
                    plan.append((kind or "", {"Id": record}))
                    continue
                if not kind or kind not in FIELDS:
                    raise WriteError("INVALID_TYPE", "sObject type in attributes is missing or not supported")
                if object_name and kind != object_name:
                    raise WriteError("INVALID_TYPE", f"attributes.type {kind} does not match the URL's {object_name}")
                if operation == "upsert" and "Id" in record:
                    raise WriteError("INVALID_FIELD", "Id is not allowed in an upsert by external id", ["Id"])
                if all_or_none:   # dry-run validation
                    self._check_fields(kind, {k: v for k, v in record.items() if k != "Id"},
                                       creating=operation == "create")
                errors.append(None)
            except WriteError as exc:
                errors.append(exc)
            plan.append((kind or "", record))
        if all_or_none and any(errors):
            rolled = WriteError("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records "
                                "were valid and the request was using AllOrNone header")
            return [{"id": None, "success": False, "errors": [(e or rolled).collection_body()],
                     **({"created": False} if operation == "upsert" else {})} for e in errors]
        results = []
        for (kind, record), error in zip(plan, errors, strict=True):
            result: dict = {"id": None, "success": False, "errors": []}
            external = None
            try:
                if error:
                    raise error
                if operation == "create":
                    result["id"] = self.create_record(kind, record)
                elif operation == "update":
                    result["id"] = self.update_record(kind, str(record.get("Id", "")),
                                                      {k: v for k, v in record.items() if k != "Id"})
                elif operation == "upsert":
                    value = record.get(ext_field)
                    if value in (None, ""):
                        raise WriteError("MISSING_ARGUMENT", f"{ext_field} not specified", [ext_field])
                    external = (ext_field, str(value))
                    result["id"], result["created"] = self.upsert_record(kind, ext_field, str(value), record)
                elif operation == "delete":
                    if not kind:
                        raise WriteError("MALFORMED_ID", f"malformed id {record['Id']}", ["Id"])
                    result["id"] = self.delete_record(kind, record["Id"])
                result["success"] = True
                self._log(operation, kind, result["id"], True, _loggable(record), external=external)
            except WriteError as exc:
                result["errors"] = [exc.collection_body()]
                if operation == "upsert":
                    result.setdefault("created", False)
                self._log(operation, kind, result["id"], False, _loggable(record), exc, external)
            results.append(result)
        return results


def object_of(record_id: str) -> str | None:
    return object_of_id(record_id)


def _loggable(record: Any) -> dict:
    if isinstance(record, dict):
        return {k: v for k, v in record.items() if k != "attributes"}
    return {"Id": record}
