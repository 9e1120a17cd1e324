"""Pipedrive sandbox reads: v2 cursor lists and single reads, v1 offset lists (notes, leads, users),
`/v1/recents`, field definitions."""


from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from canonry.sandbox.collection import BASE_EPOCH, Collection, Entry
from canonry.sandbox.engine import (
    json_response,
    utcnow,
)
from canonry.sandbox.kit import encode_cursor, guarded
from canonry.sandbox.pipedrive.data import (
    RECENT_ITEMS,
    V1_LISTS,
    V2_OBJECTS,
    WRITABLE,
    BadRequest,
    parse_rfc3339,
    whole_second,
)
from canonry.sandbox.pipedrive.fields import FIELD_ENDPOINTS


class PipedriveReads:
    """The read endpoints of the Pipedrive simulator."""

    @guarded
    async def v2_list(self, request: Request, headers: dict[str, str]) -> Response:
        name = request.path_params["object"]
        if name not in V2_OBJECTS:
            return self.error_response(404, f"Unknown endpoint /api/v2/{name}", "not_found", headers)
        q = request.query_params
        try:
            limit = self._limit(request)
            statuses = self._deal_statuses(request, {"open", "won", "lost"}) if name == "deals" else None
            since = parse_rfc3339(q["updated_since"]) if q.get("updated_since") else None
            until = parse_rfc3339(q["updated_until"]) if q.get("updated_until") else None
            sort_by = q.get("sort_by", "id")
            direction = q.get("sort_direction", "asc")
            if sort_by not in ("id", "update_time", "add_time") or direction not in ("asc", "desc"):
                raise BadRequest("Validation failed: sort_by/sort_direction")
            after = self._decode_cursor(q["cursor"]) if q.get("cursor") else None
            ids = {i.strip() for i in q.get("ids", "").split(",") if i.strip()} or None
            if ids and len(ids) > 100:
                raise BadRequest("Validation failed: ids: at most 100 ids")
            owner = q.get("owner_id")
        except (BadRequest, ValueError) as exc:
            return self.error_response(400, str(exc), "validation", headers)
        collection = self.collections[name]

        def keep(index: int, entry: Entry) -> bool:
            if not self._matches(name, entry, statuses):
                return False
            if since is not None and whole_second(entry.modified_at) < since:
                return False
            if until is not None and whole_second(entry.modified_at) >= until:
                return False
            if ids is not None and collection.id_of(index) not in ids:
                return False
            return owner is None or str(entry.record.get("owner_id")) == owner

        try:
            candidates = list(self._ordered(collection, sort_by, direction, since, after)) \
                if direction == "desc" else self._ordered(collection, sort_by, direction, since, after)
        except (TypeError, ValueError, IndexError):
            return self.error_response(400, "Validation failed: cursor does not belong to this query", "validation",
                                       headers)
        page, next_key, page_key = [], None, None
        for key, index, entry in candidates:
            if not keep(index, entry):
                continue
            if len(page) == limit:
                next_key = page_key
                break
            page.append(self.render(name, index, entry))
            page_key = key
        additional = {"next_cursor": encode_cursor(next_key, separators=None) if next_key is not None else None}
        return self._ok(page, additional, headers)

    def _ordered(self, collection: Collection, sort_by: str, direction: str, since: datetime | None,
                 after: list | None) -> Iterator[tuple[list, int, Entry]]:
        """(sort key, index, entry) in the requested order, strictly after the cursor key `after`;
        keys are JSON-able (they become the opaque cursor)."""
        if sort_by == "update_time" and direction == "asc":
            lower = since or (BASE_EPOCH - timedelta(days=3650))
            if after is not None:
                lower = max(lower, datetime.fromisoformat(after[0]))
            for index, entry in collection.iter_modified_since(lower, include_deleted=True):
                key = [entry.modified_at.isoformat(), index]
                if after is None or key > after:
                    yield key, index, entry
            return
        if sort_by in ("id", "add_time") and direction == "asc":
            # Ids grow with the index and creation times never go backwards: both are index order.
            for index in range(after[0] + 1 if after else 0, collection.size):
                yield [index], index, collection.get(index)
            return
        # Descending orders: materialise (rarely used; fine for a sandbox).
        rows = []
        for index in range(collection.size):
            entry = collection.get(index)
            if sort_by == "update_time":
                key = [entry.modified_at.isoformat(), index]
            elif sort_by == "add_time":
                key = [entry.created_at.isoformat(), index]
            else:
                key = [index]
            if after is None or key < after:
                rows.append((key, index, entry))
        rows.sort(key=lambda r: r[0], reverse=True)
        yield from rows

    @guarded
    async def v2_get(self, request: Request, headers: dict[str, str]) -> Response:
        name = request.path_params["object"]
        if name not in V2_OBJECTS:
            return self.error_response(404, f"Unknown endpoint /api/v2/{name}", "not_found", headers)
        collection = self.collections[name]
        index = collection.index_of(request.path_params["record_id"])
        if index is None or (not collection.is_alive(index) and name != "deals"):
            return self.error_response(404, f"{WRITABLE.get(name, name).title()} not found", "not_found", headers)
        return self._ok(self.render(name, index, collection.get(index)), headers=headers)

    # v1 lists ---------------------------------------------------------------------------------
    def _v1_page(self, request: Request, rows: Iterator[dict], headers: dict[str, str]) -> Response:
        try:
            limit = self._limit(request)
            start = int(request.query_params.get("start", "0") or 0)
        except (BadRequest, ValueError) as exc:
            return self.error_response(400, str(exc), "validation", headers)
        page, more, position = [], False, 0
        for row in rows:
            if position >= start + limit:
                more = True
                break
            if position >= start:
                page.append(row)
            position += 1
        pagination = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pagination["next_start"] = start + limit
        return self._ok(page or None, {"pagination": pagination}, headers)

    def _sorted_rows(self, name: str, sort: str | None, keep: Callable[[Entry], bool],
                     render: Callable[[int, Entry], dict]) -> Iterator[dict]:
        collection = self.collections[name]
        field, _, mode = (sort or "id ASC").partition(" ")
        descending = mode.strip().upper() == "DESC"
        if field == "update_time" and not descending:
            for index, entry in collection.iter_modified_since(BASE_EPOCH - timedelta(days=3650), True):
                if keep(entry):
                    yield render(index, entry)
            return
        if field == "update_time":
            # Newest first: changed records (in the overlay) then base records backwards.
            with collection.lock:
                changed = [i for _, i in reversed(collection._changed_order)]
            for index in changed:
                entry = collection.changes[index]
                if keep(entry):
                    yield render(index, entry)
            for index in range(collection.base_size - 1, -1, -1):
                if index in collection.changes:
                    continue
                entry = collection.get(index)
                if keep(entry):
                    yield render(index, entry)
            return
        indexes = range(collection.size - 1, -1, -1) if descending else range(collection.size)
        for index in indexes:
            entry = collection.get(index)
            if keep(entry):
                yield render(index, entry)

    @guarded
    async def v1_list(self, request: Request, headers: dict[str, str]) -> Response:
        name = request.path_params["object"]
        if name not in V1_LISTS:
            return self.error_response(404, f"Unknown endpoint /v1/{name}", "not_found", headers)
        try:
            statuses = self._deal_statuses(request, {"open", "won", "lost"}) if name == "deals" else None
        except BadRequest as exc:
            return self.error_response(400, str(exc), "validation", headers)
        rows = self._sorted_rows(name, request.query_params.get("sort"),
                                 lambda e: self._matches(name, e, statuses),
                                 lambda i, e: self.render_v1(name, i, e))
        return self._v1_page(request, rows, headers)

    @guarded
    async def v1_notes(self, request: Request, headers: dict[str, str]) -> Response:
        rows = self._sorted_rows("notes", request.query_params.get("sort"), lambda e: e.deleted_at is None,
                                 lambda i, e: self.render("notes", i, e))
        return self._v1_page(request, rows, headers)

    @guarded
    async def v1_leads(self, request: Request, headers: dict[str, str]) -> Response:
        archived = request.query_params.get("archived_status", "all")
        if archived not in ("archived", "not_archived", "all"):
            return self.error_response(400, "archived_status must be archived, not_archived or all", "validation",
                                       headers)

        def keep(entry: Entry) -> bool:
            if entry.deleted_at is not None:
                return False
            return archived == "all" or entry.record["is_archived"] == (archived == "archived")

        rows = self._sorted_rows("leads", request.query_params.get("sort"), keep,
                                 lambda i, e: self.render("leads", i, e))
        return self._v1_page(request, rows, headers)

    @guarded
    async def v1_users(self, request: Request, headers: dict[str, str]) -> Response:
        """Every user in one answer: Pipedrive's /v1/users has no pagination."""
        collection = self.collections["users"]
        data = [self.render("users", i, e) for i, e in collection.iter_alive()]
        return self._ok(data, None, headers)

    @guarded
    async def recents(self, request: Request, headers: dict[str, str]) -> Response:
        q = request.query_params
        raw = q.get("since_timestamp")
        try:
            since = datetime.strptime(raw or "", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            return self.error_response(400, "since_timestamp is required in format YYYY-MM-DD HH:MM:SS",
                                       "validation", headers)
        items = [i.strip() for i in q.get("items", "").split(",") if i.strip()] or list(RECENT_ITEMS)
        unknown = [i for i in items if i not in RECENT_ITEMS]
        if unknown:
            return self.error_response(400, f"Unknown items: {', '.join(unknown)}", "validation", headers)
        changes: list[tuple[datetime, str, int, Entry]] = []
        for item in items:
            collection = self.collections[RECENT_ITEMS[item]]
            for index, entry in collection.iter_modified_since(since, include_deleted=True):
                changes.append((entry.modified_at, item, index, entry))
        changes.sort(key=lambda c: (c[0], c[1], c[2]))
        rows = ({"item": item, "id": int(self.collections[RECENT_ITEMS[item]].id_of(index)),
                 "data": self._recent_data(item, index, entry)}
                for _, item, index, entry in changes)
        response = self._v1_page(request, rows, headers)
        body = json.loads(response.body)
        if body.get("success"):
            page = body.get("data") or []
            last = (page[-1]["data"][0] if isinstance(page[-1]["data"], list) else page[-1]["data"]) if page else {}
            body["additional_data"].update(since_timestamp=raw, last_timestamp_on_page=(
                last.get("update_time") or last.get("modified")) if page else raw)
            return json_response(body, headers=headers)
        return response

    def _recent_data(self, item: str, index: int, entry: Entry) -> dict | list[dict]:
        body = self.render_v1(RECENT_ITEMS[item], index, entry)
        # Pipedrive's quirk: a user's `data` in /recents is a one-element list, every other item's an object
        # (singer-io/tap-pipedrive RecentUsersStream.process_row reads `row['data'][0]`).
        return [body] if item == "user" else body

    # -- field definitions ----------------------------------------------------------------------
    @guarded
    async def v1_fields(self, request: Request, headers: dict[str, str]) -> Response:
        """`GET /v1/<entity>Fields`: every field of the entity, system then custom, offset-paged."""
        entity = FIELD_ENDPOINTS[request.url.path.rsplit("/", 1)[-1]]
        return self._v1_page(request, iter(self.field_definitions.fields[entity]), headers)

    @guarded
    async def v1_field_update(self, request: Request, headers: dict[str, str]) -> Response:
        """`PUT /v1/<entity>Fields/{id}` with `{name}`: renames a custom field (its key stays)."""
        segment, raw_id = request.url.path.split("/")[-2:]
        entity = FIELD_ENDPOINTS[segment]
        try:
            body = await self._body(request)
        except (BadRequest, ValueError) as exc:
            return self.error_response(400, f"Invalid request body: {exc}", "validation", headers)
        if not raw_id.isdigit() or not isinstance(body.get("name"), str) or not body["name"].strip():
            return self.error_response(400, "Field id must be an integer and name a non-empty string", "validation",
                                       headers)
        definition = next((f for f in self.field_definitions.fields[entity] if f["id"] == int(raw_id)), None)
        if definition is None:
            return self.error_response(404, "Field not found", "not_found", headers)
        if not definition["edit_flag"]:
            return self.error_response(400, "System fields cannot be renamed", "validation", headers)
        self.field_definitions.rename(entity, int(raw_id), body["name"].strip(), utcnow())
        return self._ok(definition, headers=headers)
