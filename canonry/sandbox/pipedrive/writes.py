"""Pipedrive sandbox writes for reverse ETL: v2 POST/PATCH/DELETE and v1 POST/PUT/DELETE of persons,
organizations and deals, the write log and injectable per-record failures."""


from __future__ import annotations

import json
import time

from starlette.requests import Request
from starlette.responses import Response

from canonry.sandbox.engine import (
    json_response,
    utcnow,
)
from canonry.sandbox.kit import guarded
from canonry.sandbox.pipedrive.data import USER_OFFSET, WRITABLE, BadRequest, rfc3339


class PipedriveWrites:
    """The write endpoints of the Pipedrive simulator."""

    # -- writes (reverse ETL) -------------------------------------------------------------------
    def _writable(self, request: Request) -> tuple[str | None, str]:
        name = request.path_params["object"]
        version = "v2" if request.url.path.startswith("/api/v2/") else "v1"
        return (name if name in WRITABLE else None), version

    def _injected_failure(self, name: str, remote_id: str | None, body: dict) -> tuple[int, str] | None:
        rules = self.write_failures.get(name, {})
        label = body.get("title") if name == "deals" else body.get("name")
        for key in (remote_id, f"name:{label}" if label else None, "*"):
            if key is not None and key in rules:
                return rules[key]
        return None

    def _log_write(self, method: str, name: str, remote_id: str | None, body: dict, status: int,
                   error: str | None = None) -> None:
        with self.state.lock:
            self.writes.append({"method": method, "object": name, "id": remote_id, "body": body,
                                "status": status, "error": error, "at": time.time()})

    def _missing(self, name: str, index: int | None) -> tuple[int, str] | None:
        if index is None or not self.collections[name].is_alive(index):
            return 404, f"{WRITABLE[name].title()} not found"
        return None

    def _refused(self, method: str, name: str, remote_id: str | None, body: dict, headers: dict[str, str],
                 problem: tuple[int, str] | None) -> Response | None:
        """The answer to a write that fails (an injected failure first, else the request's own `problem`),
        logged; None when it goes ahead."""
        failure = self._injected_failure(name, remote_id, body) or problem
        if failure is None:
            return None
        self._log_write(method, name, remote_id, body, failure[0], failure[1])
        return self.error_response(failure[0], failure[1], "validation", headers)

    async def _body(self, request: Request) -> dict:
        raw = await request.body()
        if not raw:
            return {}
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return dict(await request.form())
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise BadRequest("request body must be a JSON object")
        return data

    def _apply(self, name: str, record: dict, body: dict, version: str) -> dict:
        """Merge a write body into a stored record (only fields Pipedrive accepts for the object)."""
        simple = {
            "persons": ("name", "first_name", "last_name", "owner_id", "org_id", "visible_to", "label_ids",
                        "job_title"),
            "organizations": ("name", "owner_id", "visible_to", "label_ids", "website", "industry",
                              "employee_count"),
            "deals": ("title", "owner_id", "person_id", "org_id", "pipeline_id", "stage_id", "value", "currency",
                      "status", "probability", "lost_reason", "visible_to", "expected_close_date", "label_ids"),
        }[name]
        for key in simple:
            if key in body:
                record[key] = body[key]
        if isinstance(body.get("custom_fields"), dict):   # v2: custom fields by their (hash) key
            record["custom_fields"] = {**(record.get("custom_fields") or {}), **body["custom_fields"]}
        if version == "v1" and name == "deals" and "user_id" in body:
            record["owner_id"] = body["user_id"]
        if name == "persons":
            for v2_key, v1_key in (("emails", "email"), ("phones", "phone")):
                value = body.get(v2_key, body.get(v1_key))
                if value is None:
                    continue
                if isinstance(value, str):
                    value = [{"value": value, "primary": True, "label": "work"}]
                record[v2_key] = [{"value": v.get("value"), "primary": bool(v.get("primary", n == 0)),
                                   "label": v.get("label", "work")} for n, v in enumerate(value)]
            if ("first_name" in body or "last_name" in body) and "name" not in body:
                record["name"] = f"{record.get('first_name') or ''} {record.get('last_name') or ''}".strip()
            elif "name" in body and "first_name" not in body:
                first, _, last = str(body["name"]).partition(" ")
                record["first_name"], record["last_name"] = first, last or None
        if name == "organizations" and "address" in body:
            address = body["address"]
            if isinstance(address, str):
                address = {"value": address, "formatted_address": address}
            record["address"] = {**(record.get("address") or {}), **address}
        if name == "deals" and "value" in body and body["value"] is not None:
            record["value"] = float(body["value"])
        if name == "deals" and body.get("status") in ("won", "lost"):
            now = rfc3339(utcnow())
            record["close_time"] = now
            record["won_time" if body["status"] == "won" else "lost_time"] = now
        return record

    def _blank(self, name: str) -> dict:
        base = {"persons": {"name": None, "first_name": None, "last_name": None, "owner_id": USER_OFFSET + 1,
                            "org_id": None, "emails": [], "phones": [], "visible_to": 3, "label_ids": [],
                            "picture_id": None, "job_title": None, "custom_fields": {}},
                "organizations": {"name": None, "owner_id": USER_OFFSET + 1, "visible_to": 3, "label_ids": [],
                                  "address": None, "website": None, "industry": None, "employee_count": None,
                                  "custom_fields": {}},
                "deals": {"title": None, "owner_id": USER_OFFSET + 1, "person_id": None, "org_id": None,
                          "pipeline_id": 1, "stage_id": 1, "value": 0.0, "currency": "EUR", "status": "open",
                          "probability": None, "lost_reason": None, "visible_to": 3, "close_time": None,
                          "won_time": None, "lost_time": None, "expected_close_date": None, "label_ids": [],
                          "origin": "API", "origin_id": None, "channel": None, "channel_id": None,
                          "is_archived": False, "stage_probability": 10, "custom_fields": {}}}
        return json.loads(json.dumps(base[name]))

    @guarded
    async def create(self, request: Request, headers: dict[str, str]) -> Response:
        name, version = self._writable(request)
        if name is None:
            return self.error_response(404, f"Unknown endpoint {request.url.path}", "not_found", headers)
        try:
            body = await self._body(request)
        except (BadRequest, ValueError) as exc:
            return self.error_response(400, f"Invalid request body: {exc}", "validation", headers)
        required = "title" if name == "deals" else "name"
        refused = self._refused("POST", name, None, body, headers,
                                None if body.get(required) else (400, f"{required.title()} must be given."))
        if refused is not None:
            return refused
        collection = self.collections[name]
        record = self._apply(name, self._blank(name), body, version)
        index = collection.create(lambda _i: record, utcnow())
        remote_id = collection.id_of(index)
        self._log_write("POST", name, remote_id, body, 201)
        rendered = self.render(name, index, collection.get(index)) if version == "v2" \
            else self.render_v1(name, index, collection.get(index))
        return json_response({"success": True, "data": rendered}, 201, headers)

    @guarded
    async def update(self, request: Request, headers: dict[str, str]) -> Response:
        name, version = self._writable(request)
        if name is None:
            return self.error_response(404, f"Unknown endpoint {request.url.path}", "not_found", headers)
        remote_id = request.path_params["record_id"]
        try:
            body = await self._body(request)
        except (BadRequest, ValueError) as exc:
            return self.error_response(400, f"Invalid request body: {exc}", "validation", headers)
        method = "PATCH" if version == "v2" else "PUT"
        collection = self.collections[name]
        index = collection.index_of(remote_id)
        refused = self._refused(method, name, remote_id, body, headers, self._missing(name, index))
        if refused is not None:
            return refused
        entry = collection.update(index, lambda rec: self._apply(name, rec, body, version), utcnow())
        self._log_write(method, name, remote_id, body, 200)
        rendered = self.render(name, index, entry) if version == "v2" else self.render_v1(name, index, entry)
        return self._ok(rendered, headers=headers)

    @guarded
    async def delete(self, request: Request, headers: dict[str, str]) -> Response:
        name, version = self._writable(request)
        if name is None:
            return self.error_response(404, f"Unknown endpoint {request.url.path}", "not_found", headers)
        remote_id = request.path_params["record_id"]
        collection = self.collections[name]
        index = collection.index_of(remote_id)
        refused = self._refused("DELETE", name, remote_id, {}, headers, self._missing(name, index))
        if refused is not None:
            return refused
        collection.delete(index, utcnow())
        self._log_write("DELETE", name, remote_id, {}, 200)
        return self._ok({"id": int(remote_id)}, headers=headers)

    async def control_writes(self, request: Request) -> Response:
        if request.method == "DELETE":
            with self.state.lock:
                self.writes.clear()
            return json_response({"cleared": True})
        with self.state.lock:
            return json_response({"writes": list(self.writes)})

    async def control_write_failures(self, request: Request) -> Response:
        """POST {object, ids?: [...], names?: [...], all?: bool, status?: 400, error?: "..."}; DELETE clears."""
        if request.method == "DELETE":
            self.write_failures.clear()
            return json_response({"cleared": True})
        body = await request.json()
        name = body.get("object")
        if name not in WRITABLE:
            return json_response({"error": f"object must be one of {sorted(WRITABLE)}"}, 400)
        failure = (int(body.get("status", 400)), str(body.get("error", "Injected failure")))
        rules = self.write_failures.setdefault(name, {})
        for remote_id in body.get("ids", []):
            rules[str(remote_id)] = failure
        for label in body.get("names", []):
            rules[f"name:{label}"] = failure
        if body.get("all"):
            rules["*"] = failure
        return json_response({"object": name, "rules": len(rules)})
