"""Salesforce sandbox single-record REST: GET/PATCH/DELETE by id, create, upsert by external id, sObject
Collections (the write rules themselves: `writes.py`)."""


from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from canonry.sandbox.kit import guarded, read_json
from canonry.sandbox.salesforce.writes import WriteError


class SalesforceRest:
    """The single-record and collection endpoints of the Salesforce simulator."""

    # -- single-record reads and writes -------------------------------------------------------
    def _write_error(self, exc: WriteError) -> Response:
        return self.error(exc.status, exc.code, exc.message, exc.fields)

    @guarded
    async def record(self, request: Request, headers: dict[str, str]) -> Response:
        name = self._object(request.path_params["sobject"])
        if name is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        record_id = request.path_params["record_id"]
        try:
            if request.method == "GET":
                index = self._alive_index(name, record_id)
                body = self.render(name, index, self.collections[name].get(index))
                wanted = [f for f in request.query_params.get("fields", "").split(",") if f]
                if wanted:
                    lower = {k.lower(): k for k in body}
                    missing = [f for f in wanted if f.lower() not in lower]
                    if missing:
                        return self.error(400, "INVALID_FIELD", f"No such column '{missing[0]}' on sobject of "
                                          f"type {name}")
                    body = {"attributes": body["attributes"], **{lower[f.lower()]: body[lower[f.lower()]]
                                                                 for f in wanted}}
                return self.ok(body)
            if request.method == "DELETE":
                self.delete_record(name, record_id)
                self._log("delete", name, record_id, True, {})
                return Response(status_code=204, headers=self.limit_header())
            values = await read_json(request)
            if not isinstance(values, dict):
                return self.error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
            self.update_record(name, record_id, values)
            self._log("update", name, record_id, True, values)
            return Response(status_code=204, headers=self.limit_header())
        except WriteError as exc:
            if request.method != "GET":
                self._log(request.method.lower(), name, record_id, False, {}, exc)
            return self._write_error(exc)

    @guarded
    async def create(self, request: Request, headers: dict[str, str]) -> Response:
        name = self._object(request.path_params["sobject"])
        if name is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        values = await read_json(request)
        if not isinstance(values, dict):
            return self.error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        try:
            record_id = self.create_record(name, values)
        except WriteError as exc:
            self._log("create", name, None, False, values, exc)
            return self._write_error(exc)
        self._log("create", name, record_id, True, values)
        return self.ok({"id": record_id, "success": True, "errors": []}, 201)

    @guarded
    async def upsert(self, request: Request, headers: dict[str, str]) -> Response:
        name = self._object(request.path_params["sobject"])
        if name is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        value = request.path_params["value"]
        try:
            ext_field = self.external_field(name, request.path_params["ext_field"])
            if request.method == "GET":
                found = self.find_by_external(name, ext_field, value)
                if not found:
                    raise WriteError("NOT_FOUND", "The requested resource does not exist", status=404)
                if len(found) > 1:
                    return self.ok([self.attributes(name, {"Id": self.collections[name].id_of(i)})["url"]
                                    for i in found], 300)
                return self.ok(self.render(name, found[0], self.collections[name].get(found[0])))
            values = await read_json(request)
            if not isinstance(values, dict):
                return self.error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
            update_only = request.query_params.get("updateOnly", "false").lower() == "true"
            record_id, created = self.upsert_record(name, ext_field, value, values, update_only)
        except WriteError as exc:
            self._log("upsert", name, None, False, {}, exc, (request.path_params["ext_field"], value))
            if exc.status == 300:
                found = self.find_by_external(name, request.path_params["ext_field"], value)
                return self.ok([self.attributes(name, {"Id": self.collections[name].id_of(i)})["url"]
                                for i in found], 300)
            return self._write_error(exc)
        self._log("upsert", name, record_id, True, values, external=(ext_field, value))
        return self.ok({"id": record_id, "success": True, "errors": [], "created": created}, 201 if created else 200)

    @guarded
    async def composite(self, request: Request, headers: dict[str, str]) -> Response:
        try:
            if request.method == "DELETE":
                ids = [i for i in request.query_params.get("ids", "").split(",") if i]
                all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"
                return self.ok(self.collection_write("delete", ids, all_or_none))
            body = await read_json(request)
            if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                return self.error(400, "JSON_PARSER_ERROR", "The request body must have a records array")
            operation = "create" if request.method == "POST" else "update"
            return self.ok(self.collection_write(operation, body["records"], bool(body.get("allOrNone"))))
        except WriteError as exc:
            return self._write_error(exc)

    @guarded
    async def composite_upsert(self, request: Request, headers: dict[str, str]) -> Response:
        name = self._object(request.path_params["sobject"])
        if name is None:
            return self.error(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            ext_field = self.external_field(name, request.path_params["ext_field"])
            body = await read_json(request)
            if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                return self.error(400, "JSON_PARSER_ERROR", "The request body must have a records array")
            return self.ok(self.collection_write("upsert", body["records"], bool(body.get("allOrNone")),
                                                 name, ext_field))
        except WriteError as exc:
            return self._write_error(exc)
