"""Pipedrive sandbox search: `GET /api/v2/{persons,organizations}/search` (API v2), what reverse ETL uses to
find a record by natural key before creating it (Pipedrive has no upsert).

Parameters as Pipedrive documents them: `term` (at least 2 characters, 1 with `exact_match`), `fields`
(comma list; persons: name, email, phone, notes, custom_fields; organizations: name, address, notes,
custom_fields; default all), `exact_match` (the whole field value equals the term, case-insensitively;
otherwise the term occurs in it), `limit` (1–500, default 100), `cursor`. The answer is
`{success, data: {items: [{result_score, item: {id, type, name, emails, phones, owner, ...}}]},
additional_data: {next_cursor}}`; in a search item emails and phones are plain strings. Deleted records are
never found. Unlike Pipedrive's search index, which can lag a write by seconds, the sandbox finds a
record as soon as it is written (the client must not rely on either).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from canonry.sandbox.collection import Entry
from canonry.sandbox.kit import encode_cursor, guarded
from canonry.sandbox.pipedrive.data import BadRequest

SEARCH_FIELDS = {"persons": ("name", "email", "phone", "notes", "custom_fields"),
                 "organizations": ("name", "address", "notes", "custom_fields")}
SEARCH_TYPES = {"persons": "person", "organizations": "organization"}


class PipedriveSearch:
    """The search endpoints of the Pipedrive simulator."""

    @guarded
    async def v2_search(self, request: Request, headers: dict[str, str]) -> Response:
        name = request.path_params["object"]
        if name not in SEARCH_FIELDS:
            return self.error_response(404, f"Unknown endpoint /api/v2/{name}/search", "not_found", headers)
        q = request.query_params
        try:
            exact = q.get("exact_match", "false").lower() in ("true", "1")
            term = (q.get("term") or "").strip()
            if len(term) < (1 if exact else 2):
                raise BadRequest("Validation failed: term: the search term must be at least 2 characters "
                                 "(1 with exact_match)")
            fields = [f.strip() for f in q.get("fields", "").split(",") if f.strip()] or list(SEARCH_FIELDS[name])
            unknown = [f for f in fields if f not in SEARCH_FIELDS[name]]
            if unknown:
                raise BadRequest(f"Validation failed: fields: unknown value(s) {', '.join(unknown)}")
            limit = self._limit(request)
            start = int(self._decode_cursor(q["cursor"])[0]) if q.get("cursor") else 0
        except (BadRequest, ValueError, TypeError, IndexError) as exc:
            return self.error_response(400, str(exc), "validation", headers)
        collection = self.collections[name]
        items, next_start = [], None
        for index in range(start, collection.size):
            entry = collection.get(index)
            if entry.deleted_at is not None:
                continue
            score = self._score(entry, fields, term.lower(), exact)
            if score is None:
                continue
            if len(items) == limit:
                next_start = index
                break
            items.append({"result_score": score, "item": self._search_item(name, index, entry)})
        cursor = encode_cursor([next_start]) if next_start is not None else None
        return self._ok({"items": items}, {"next_cursor": cursor}, headers)

    @staticmethod
    def _score(entry: Entry, fields: list[str], term: str, exact: bool) -> float | None:
        record = entry.record
        values: list[str] = []
        for field in fields:
            if field == "email":
                values += [str(e.get("value")) for e in record.get("emails") or [] if e.get("value")]
            elif field == "phone":
                values += [str(p.get("value")) for p in record.get("phones") or [] if p.get("value")]
            elif field == "address":
                address = record.get("address") or {}
                values += [str(address.get("value"))] if address.get("value") else []
            elif field == "custom_fields":
                values += [str(v) for v in (record.get("custom_fields") or {}).values() if v is not None]
            elif record.get(field) is not None:
                values.append(str(record[field]))
        lowered = [v.lower() for v in values]
        if any(v == term for v in lowered):
            return 1.0
        if not exact and any(term in v for v in lowered):
            return 0.5
        return None

    def _search_item(self, name: str, index: int, entry: Entry) -> dict:
        record = entry.record
        item = {"id": int(self.collections[name].id_of(index)), "type": SEARCH_TYPES[name],
                "name": record.get("name"), "visible_to": record.get("visible_to"),
                "owner": {"id": record.get("owner_id")}, "custom_fields": [], "notes": [],
                "update_time": self.render(name, index, entry)["update_time"]}
        if name == "persons":
            item["emails"] = [e.get("value") for e in record.get("emails") or []]
            item["phones"] = [p.get("value") for p in record.get("phones") or []]
            item["organization"] = {"id": record["org_id"]} if record.get("org_id") else None
        else:
            item["address"] = (record.get("address") or {}).get("value")
        return item
