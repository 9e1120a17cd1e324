"""HubSpot sandbox reads: object lists and single reads, batch reads, associations, owners, pipelines,
property definitions (and relabelling a custom property), schemas."""


from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from canonry.sandbox.collection import Entry
from canonry.sandbox.engine import (
    bytes_response,
    json_response,
    utcnow,
)
from canonry.sandbox.hubspot.data import LIST_PAGE_MAX, OBJECT_TYPES, TYPE_IDS, iso
from canonry.sandbox.kit import guarded


class HubSpotReads:
    """The read endpoints of the HubSpot simulator."""

    def _object_name(self, request: Request) -> str | None:
        raw = request.path_params["object_type"]
        name = TYPE_IDS.get(raw, raw)
        return name if name in OBJECT_TYPES else None

    @staticmethod
    def _csv_params(request: Request, key: str) -> list[str]:
        values: list[str] = []
        for raw in request.query_params.getlist(key):
            values += [v for v in raw.split(",") if v]
        return values

    @guarded
    async def list_objects(self, request: Request, headers: dict[str, str]) -> Response:
        name = self._object_name(request)
        if name is None:
            return self.error_response(400, f"Unable to infer object type from: {request.path_params['object_type']}",
                                       "validation")
        try:
            limit = min(int(request.query_params.get("limit", "10")), LIST_PAGE_MAX)
            start = int(request.query_params.get("after", "0") or 0)
        except ValueError:
            return self.error_response(400, "Invalid input JSON: limit and after must be integers", "validation")
        if limit < 1:
            return self.error_response(400, "limit must be at least 1", "validation")
        collection = self.collections[name]
        archived = request.query_params.get("archived", "false").lower() == "true"
        properties = self._csv_params(request, "properties")
        associations = self._csv_params(request, "associations")
        key = (name, start, limit, archived, tuple(properties), tuple(associations), request.url.path)
        if self.state.page_cache:
            cached = self.page_cache.get(key, collection.version)
            if cached is not None:
                return bytes_response(cached, headers=headers)
        version = collection.version
        source: Iterator[tuple[int, Entry]] = (
            ((i, e) for i, e in collection.iter_deleted() if i >= start) if archived else collection.iter_alive(start)
        )
        results, next_index = [], None
        for index, entry in source:
            if len(results) == limit:
                next_index = index
                break
            results.append(self.render(name, index, entry, properties, associations))
        body: dict = {"results": results}
        if next_index is not None:
            link = f"{self.state.base_url}{request.url.path}?" + urlencode({"after": str(next_index)})
            body["paging"] = {"next": {"after": str(next_index), "link": link}}
        rendered = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
        if self.state.page_cache:
            self.page_cache.put(key, version, rendered)
        return bytes_response(rendered, headers=headers)

    @guarded
    async def get_object(self, request: Request, headers: dict[str, str]) -> Response:
        name = self._object_name(request)
        if name is None:
            return self.error_response(400, "Unable to infer object type", "validation")
        collection = self.collections[name]
        index = collection.index_of(request.path_params["object_id"])
        archived = request.query_params.get("archived", "false").lower() == "true"
        if index is None or collection.is_alive(index) == archived:
            return self.error_response(404, "Object not found.", "not_found")
        return json_response(self.render(name, index, collection.get(index), self._csv_params(request, "properties"),
                                         self._csv_params(request, "associations")), headers=headers)

    @guarded
    async def batch_read(self, request: Request, headers: dict[str, str]) -> Response:
        name = self._object_name(request)
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return self.error_response(400, "Invalid input JSON on line 1", "validation")
        inputs = body.get("inputs", [])
        if name is None or len(inputs) > 100:
            return self.error_response(400, "batch read accepts at most 100 inputs", "validation")
        collection = self.collections[name]
        now = utcnow()
        results, errors = [], []
        for item in inputs:
            index = collection.index_of(str(item.get("id", "")))
            if index is None or not collection.is_alive(index):
                errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                               "message": f"Could not get some {name} objects, they may be deleted or not exist.",
                               "context": {"ids": [str(item.get("id"))]}})
                continue
            results.append(self.render(name, index, collection.get(index), body.get("properties")))
        payload = {"status": "COMPLETE", "results": results, "startedAt": iso(now), "completedAt": iso(now)}
        if errors:
            payload.update(numErrors=len(errors), errors=errors)
        return json_response(payload, 207 if errors else 200, headers=headers)

    @guarded
    async def associations_batch_read(self, request: Request, headers: dict[str, str]) -> Response:
        """v4 associations: `{inputs:[{id}]}` -> `{results:[{from:{id}, to:[{toObjectId, associationTypes}]}]}`."""
        from_type = TYPE_IDS.get(request.path_params["from_type"], request.path_params["from_type"])
        to_type = TYPE_IDS.get(request.path_params["to_type"], request.path_params["to_type"])
        if from_type not in OBJECT_TYPES or to_type not in OBJECT_TYPES:
            return self.error_response(400, "Unknown object type", "validation")
        body = await request.json()
        inputs = body.get("inputs", [])
        if len(inputs) > 1000:
            return self.error_response(400, "batch read accepts at most 1000 inputs", "validation")
        collection = self.collections[from_type]
        results = []
        for item in inputs:
            index = collection.index_of(str(item.get("id", "")))
            if index is None:
                continue
            entry = collection.get(index)
            linked = self._associations(from_type, entry.record["properties"], entry, [to_type]).get(to_type)
            if linked:
                results.append({"from": {"id": collection.id_of(index)}, "to": [
                    {"toObjectId": int(r["id"]), "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": None}]} for r in linked["results"]]})
        return json_response({"status": "COMPLETE", "results": results}, headers=headers)

    @guarded
    async def list_owners(self, request: Request, headers: dict[str, str]) -> Response:
        limit = min(int(request.query_params.get("limit", "100")), 500)
        start = int(request.query_params.get("after", "0") or 0)
        archived = request.query_params.get("archived", "false").lower() == "true"
        collection = self.collections["owners"]
        source = ((i, e) for i, e in collection.iter_deleted() if i >= start) if archived \
            else collection.iter_alive(start)
        results, next_index = [], None
        for index, entry in source:
            if len(results) == limit:
                next_index = index
                break
            results.append(self.render_owner(index, entry))
        body: dict = {"results": results}
        if next_index is not None:
            body["paging"] = {"next": {"after": str(next_index),
                                       "link": f"{self.state.base_url}/crm/v3/owners?after={next_index}"}}
        return json_response(body, headers=headers)

    @guarded
    async def list_pipelines(self, request: Request, headers: dict[str, str]) -> Response:
        if request.path_params["object_type"] not in ("deals", "0-3"):
            return json_response({"results": []}, headers=headers)
        return json_response({"results": self.pipelines()}, headers=headers)

    @guarded
    async def list_properties(self, request: Request, headers: dict[str, str]) -> Response:
        """`GET /crm/v3/properties/{objectType}`: the property definitions (name, type, fieldType)."""
        name = self._object_name(request)
        if name is None:
            return self.error_response(400, "Unable to infer object type", "validation")
        return json_response({"results": self.property_definitions(name)}, headers=headers)

    @guarded
    async def update_property(self, request: Request, headers: dict[str, str]) -> Response:
        """`PATCH /crm/v3/properties/{objectType}/{propertyName}` with `{label}`: relabels a custom property
        (its internal name, the key of its values, never changes)."""
        name = self._object_name(request)
        try:
            body = await request.json()
        except ValueError:
            body = None
        label = body.get("label") if isinstance(body, dict) else None
        if name is None or not isinstance(label, str) or not label.strip():
            return self.error_response(400, "A known object type and a non-empty label are required", "validation")
        definition = self.custom.relabel(name, request.path_params["property_name"], label.strip(), utcnow())
        if definition is None:
            return self.error_response(404, f"Property {request.path_params['property_name']} does not exist "
                                       "or is HubSpot-defined", "not_found")
        return json_response(dict(definition), headers=headers)

    @guarded
    async def list_schemas(self, request: Request, headers: dict[str, str]) -> Response:
        """`GET /crm/v3/schemas`: custom object schemas (this portal has none)."""
        return json_response({"results": []}, headers=headers)
