"""HubSpot sandbox writes (API notes: sources/hubspot/README.md): single create/update, batch create, update
and upsert (≤ 100 inputs), a property schema with HubSpot's validation errors, injectable per-input
failures and a write log.

* `POST /crm/v3/objects/{type}` (201) and `PATCH /crm/v3/objects/{type}/{id}?idProperty=` (200).
* `POST …/{type}/batch/create` (201, or 207 with per-input errors), `…/batch/update` (200/207;
  `inputs[{id, properties, idProperty?}]`), `…/batch/upsert` (200/207; `inputs[{id, idProperty, properties}]`,
  `idProperty` must be a unique property: `email` for contacts, or the custom `canonry_external_id`;
  results carry `new`). Every input may carry `objectWriteTraceId`, echoed in its result and in the
  `context` of its error, which is how a client correlates a 207's errors with its inputs.
* `POST …/{type}/batch/archive` (`inputs[{id}]`, 204): archives (the truth marks them deleted); unknown or
  already archived ids are ignored, as HubSpot does. Logged as operation `archive`.
* Property values must exist on the object (`PROPERTY_DOESNT_EXIST`), not be read-only (`READ_ONLY_VALUE`),
  and numbers must parse (`INVALID_INTEGER`); values are stored and returned as strings.
* Contacts de-duplicate on email: creating one with an existing email is a 409 `CONFLICT`.
* Control: `POST /_sandbox/hubspot/write_failures {"rules": [{object, ids?, property?, value?, message?,
  remaining?}]}` (reject matching inputs with a VALIDATION_ERROR), `GET|DELETE /_sandbox/hubspot/writes`
  (the write log: one entry per input attempted, with its outcome).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from canonry.sandbox.engine import CONTROL_PREFIX, json_response, utcnow
from canonry.sandbox.hubspot.data import OBJECT_TYPES, iso
from canonry.sandbox.kit import guarded

BATCH_MAX = 100
# Custom properties this portal has (created by the Canonry app): a unique external id and a score.
CUSTOM_PROPERTIES: dict[str, dict[str, str]] = {
    "canonry_external_id": {"type": "string", "unique": "true"},
    "canonry_lead_score": {"type": "number"},
}
READ_ONLY = {"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate", "hs_createdate"}
UNIQUE = {"contacts": {"email", "canonry_external_id"}}
WRITABLE_TYPES = ("contacts", "companies", "deals")


class InputError(Exception):
    def __init__(self, category: str, message: str, status: int = 400, sub: str | None = None,
                 context: dict | None = None) -> None:
        super().__init__(message)
        self.category, self.message, self.status, self.sub = category, message, status, sub
        self.context = context or {}

    def body(self, trace_id: str | None = None, ids: list[str] | None = None) -> dict:
        context = dict(self.context)
        if trace_id:
            context["objectWriteTraceId"] = [trace_id]
        if ids:
            context.setdefault("ids", ids)
        body = {"status": "error", "category": self.category, "message": self.message, "context": context}
        if self.sub:
            body["subCategory"] = self.sub
        return body


@dataclass
class WriteFailure:
    """Reject inputs of `object` whose id is in `ids`, or whose `property` equals `value` (None: all)."""

    object: str
    ids: list[str] = dataclasses.field(default_factory=list)
    property: str | None = None
    value: Any = None
    message: str = "Property values were not valid: rejected by a validation rule"
    remaining: int | None = None

    def matches(self, object_name: str, record_id: str | None, properties: dict) -> bool:
        if self.object != object_name or self.remaining == 0:
            return False
        if self.ids:
            return record_id is not None and record_id in self.ids
        if self.property is not None:
            return str(properties.get(self.property)) == str(self.value)
        return True


class HubSpotWriteMixin:
    """Write paths of the HubSpot simulator (uses its collections, render, guard and _object_name)."""

    writes: list[dict]
    write_failures: list[WriteFailure]

    # -- validation ---------------------------------------------------------------------------
    def _known_properties(self, name: str) -> set[str]:
        known = getattr(self, "_property_cache", {}).get(name)
        if known is None:

            collection = self.collections[name]
            known = set(OBJECT_TYPES[name][2]) | set(CUSTOM_PROPERTIES)
            for index in range(min(collection.base_size, 5)):
                known |= set(collection.get(index).record["properties"])
            self.__dict__.setdefault("_property_cache", {})[name] = known
        return known

    def _clean_properties(self, name: str, properties: Any) -> dict[str, str | None]:
        if not isinstance(properties, dict):
            raise InputError("VALIDATION_ERROR", "properties must be an object")
        known = self._known_properties(name)
        problems, clean = [], {}
        for key, value in properties.items():
            if key not in known:
                problems.append({"isValid": False, "message": f'Property "{key}" does not exist',
                                 "error": "PROPERTY_DOESNT_EXIST", "name": key})
            elif key in READ_ONLY:
                problems.append({"isValid": False, "message": f'"{key}" is a read only property; its value '
                                 "cannot be set.", "error": "READ_ONLY_VALUE", "name": key})
            elif CUSTOM_PROPERTIES.get(key, {}).get("type") == "number" and value not in (None, ""):
                try:
                    float(str(value))
                except ValueError:
                    problems.append({"isValid": False, "message": f"{value} was not a valid number.",
                                     "error": "INVALID_INTEGER", "name": key})
                clean[key] = str(value)
            else:
                clean[key] = None if value is None else str(value)
        if problems:
            raise InputError("VALIDATION_ERROR", "Property values were not valid: " + json.dumps(problems),
                             sub="PROPERTY_VALIDATION_ERROR")
        return clean

    def _inject(self, name: str, record_id: str | None, properties: dict) -> None:
        for rule in self.write_failures:
            if rule.matches(name, record_id, properties):
                if rule.remaining is not None:
                    rule.remaining -= 1
                raise InputError("VALIDATION_ERROR", rule.message, sub="INJECTED_FAILURE")

    def _find_by(self, name: str, prop: str, value: str) -> int | None:
        if prop == "hs_object_id":
            index = self.collections[name].index_of(str(value))
            return index if index is not None and self.collections[name].is_alive(index) else None
        for index, entry in self.collections[name].iter_alive():
            if str(entry.record["properties"].get(prop) or "").lower() == str(value).lower():
                return index
        return None

    def _log(self, operation: str, name: str, record_id: str | None, properties: dict, ok: bool,
             error: InputError | None = None, id_property: str | None = None, trace_id: str | None = None) -> None:
        with self.state.lock:
            self.writes.append({"at": utcnow().isoformat(), "operation": operation, "object": name,
                                "id": record_id, "success": ok, "properties": properties,
                                "id_property": id_property, "trace_id": trace_id,
                                "error": error.message if error else None})

    # -- primitives (raise InputError) --------------------------------------------------------
    def _create(self, name: str, properties: dict) -> tuple[int, str]:
        clean = self._clean_properties(name, properties)
        self._inject(name, None, clean)
        for prop in UNIQUE.get(name, ()):
            if clean.get(prop) and self._find_by(name, prop, clean[prop]) is not None:
                existing = self.collections[name].id_of(self._find_by(name, prop, clean[prop]))
                raise InputError("CONFLICT", f"Contact already exists. Existing ID: {existing}", status=409)
        collection = self.collections[name]
        index = collection.create(lambda _i: {"properties": dict(clean)}, utcnow())
        return index, collection.id_of(index)

    def _update(self, name: str, record_id: str, properties: dict, id_property: str | None = None) -> tuple[int, str]:
        index = self._find_by(name, id_property or "hs_object_id", record_id)
        if index is None:
            raise InputError("OBJECT_NOT_FOUND", "resource not found", status=404,
                             context={"id": [str(record_id)]})
        clean = self._clean_properties(name, properties)
        collection = self.collections[name]
        object_id = collection.id_of(index)
        self._inject(name, object_id, clean)

        def apply(record: dict) -> dict:
            record = json.loads(json.dumps(record))
            record["properties"].update(clean)
            return record
        collection.update(index, apply, utcnow())
        return index, object_id

    # -- HTTP ---------------------------------------------------------------------------------
    async def _write_prelude(self, request: Request, headers: dict[str, str]):
        """(error response or None, object type, JSON body) of a guarded write request."""
        name = self._object_name(request)
        if name not in WRITABLE_TYPES:
            return self.error_response(400, f"Unable to infer object type from: {request.path_params['object_type']}",
                                       "validation"), None, None
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return self.error_response(400, "Invalid input JSON on line 1", "validation"), None, None
        return None, name, body

    def _input_error(self, exc: InputError, headers: dict) -> Response:
        return json_response({**exc.body(), "correlationId": "sandbox"}, exc.status, headers=headers)

    @guarded
    async def create_object(self, request: Request, headers: dict[str, str]) -> Response:
        error, name, body = await self._write_prelude(request, headers)
        if error:
            return error
        props = (body or {}).get("properties", {})
        try:
            index, object_id = self._create(name, props)
        except InputError as exc:
            self._log("create", name, None, props, False, exc)
            return self._input_error(exc, headers)
        self._log("create", name, object_id, props, True)
        return json_response(self.render(name, index, self.collections[name].get(index), list(props)), 201,
                             headers=headers)

    @guarded
    async def patch_object(self, request: Request, headers: dict[str, str]) -> Response:
        error, name, body = await self._write_prelude(request, headers)
        if error:
            return error
        props = (body or {}).get("properties", {})
        id_property = request.query_params.get("idProperty")
        try:
            index, object_id = self._update(name, request.path_params["object_id"], props, id_property)
        except InputError as exc:
            self._log("update", name, request.path_params["object_id"], props, False, exc, id_property)
            return self._input_error(exc, headers)
        self._log("update", name, object_id, props, True, id_property=id_property)
        return json_response(self.render(name, index, self.collections[name].get(index), list(props)),
                             headers=headers)

    @guarded
    async def batch_write(self, request: Request, headers: dict[str, str]) -> Response:
        error, name, body = await self._write_prelude(request, headers)
        if error:
            return error
        operation = request.url.path.rsplit("/", 1)[-1]
        inputs = (body or {}).get("inputs")
        if not isinstance(inputs, list) or not inputs:
            return self.error_response(400, "inputs must be a non-empty list", "validation")
        if len(inputs) > BATCH_MAX:
            return self.error_response(400, f"Batch input limit exceeded: at most {BATCH_MAX} inputs", "validation")
        started = utcnow()
        results, errors = [], []
        for item in inputs:
            item = item if isinstance(item, dict) else {}
            trace = item.get("objectWriteTraceId")
            props = item.get("properties", {}) or {}
            record_id = str(item["id"]) if item.get("id") is not None else None
            id_property = item.get("idProperty")
            created = False
            try:
                if operation == "create":
                    index, object_id = self._create(name, props)
                    created = True
                elif operation == "update":
                    if record_id is None:
                        raise InputError("VALIDATION_ERROR", "id is required")
                    index, object_id = self._update(name, record_id, props, id_property)
                else:  # upsert
                    if record_id is None or not id_property:
                        raise InputError("VALIDATION_ERROR", "upsert inputs need id and idProperty")
                    if id_property not in UNIQUE.get(name, set()) | {"canonry_external_id"}:
                        raise InputError("VALIDATION_ERROR", f"{id_property} is not a unique property")
                    if self._find_by(name, id_property, record_id) is not None:
                        index, object_id = self._update(name, record_id, props, id_property)
                    else:
                        index, object_id = self._create(name, {**props, id_property: record_id})
                        created = True
            except InputError as exc:
                self._log(operation, name, record_id, props, False, exc, id_property, trace)
                errors.append(exc.body(trace, [record_id] if record_id else None))
                continue
            self._log(operation, name, object_id, props, True, id_property=id_property, trace_id=trace)
            result = self.render(name, index, self.collections[name].get(index), list(props))
            if trace:
                result["objectWriteTraceId"] = trace
            if operation == "upsert":
                result["new"] = created
            results.append(result)
        now = utcnow()

        payload: dict = {"status": "COMPLETE", "results": results, "requestedAt": iso(started),
                         "startedAt": iso(started), "completedAt": iso(now)}
        if errors:
            payload.update(numErrors=len(errors), errors=errors)
            return json_response(payload, 207, headers=headers)
        return json_response(payload, 201 if operation == "create" else 200, headers=headers)

    @guarded
    async def batch_archive(self, request: Request, headers: dict[str, str]) -> Response:
        """`POST …/batch/archive` {inputs: [{id}]}: 204; ids unknown or already archived are ignored, as
        HubSpot does."""
        error, name, body = await self._write_prelude(request, headers)
        if error:
            return error
        inputs = (body or {}).get("inputs")
        if not isinstance(inputs, list) or not inputs:
            return self.error_response(400, "inputs must be a non-empty list", "validation")
        if len(inputs) > BATCH_MAX:
            return self.error_response(400, f"Batch input limit exceeded: at most {BATCH_MAX} inputs", "validation")
        collection = self.collections[name]
        for item in inputs:
            record_id = str((item or {}).get("id", ""))
            index = self._find_by(name, "hs_object_id", record_id)
            if index is not None:
                collection.delete(index, utcnow())
                self._log("archive", name, record_id, {}, True)
        return Response(status_code=204, headers=headers)

    async def control_write_failures(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.write_failures.clear()
            return json_response({"cleared": True})
        body = await request.json()
        self.write_failures = [WriteFailure(**rule) for rule in body.get("rules", [])]
        return json_response({"rules": [dataclasses.asdict(r) for r in self.write_failures]})

    async def control_writes(self, request: Request) -> Response:
        with self.state.lock:
            if request.method == "DELETE":
                self.writes.clear()
                return json_response({"cleared": True})
            return json_response({"writes": list(self.writes)})

    def write_routes(self) -> list[Route]:
        routes = []
        for prefix in ("/crm/v3/objects", "/crm/objects/2026-03"):
            routes += [
                Route(prefix + "/{object_type}", self.create_object, methods=["POST"]),
                Route(prefix + "/{object_type}/batch/create", self.batch_write, methods=["POST"]),
                Route(prefix + "/{object_type}/batch/update", self.batch_write, methods=["POST"]),
                Route(prefix + "/{object_type}/batch/upsert", self.batch_write, methods=["POST"]),
                Route(prefix + "/{object_type}/batch/archive", self.batch_archive, methods=["POST"]),
                Route(prefix + "/{object_type}/{object_id}", self.patch_object, methods=["PATCH"]),
            ]
        return routes + [
            Route(f"{CONTROL_PREFIX}/hubspot/write_failures", self.control_write_failures, methods=["POST", "DELETE"]),
            Route(f"{CONTROL_PREFIX}/hubspot/writes", self.control_writes, methods=["GET", "DELETE"]),
        ]
