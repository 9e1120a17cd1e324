"""HubSpot sandbox search: `POST /crm/v3/objects/{type}/search` with filter groups, one sort, `limit` <= 200,
the 10,000-result cap and the 5/s search limit."""


from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from canonry.sandbox.engine import (
    json_response,
)
from canonry.sandbox.hubspot.data import OBJECT_TYPES, SEARCH_PAGE_MAX, SEARCH_RESULT_CAP, parse_time
from canonry.sandbox.kit import guarded


class HubSpotSearch:
    """The search endpoint of the HubSpot simulator."""

    @guarded(search=True)
    async def search(self, request: Request, headers: dict[str, str]) -> Response:
        name = self._object_name(request)
        if name is None:
            return self.error_response(400, "Unable to infer object type", "validation")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return self.error_response(400, "Invalid input JSON on line 1", "validation")
        limit = int(body.get("limit", 10))
        offset = int(body.get("after", 0) or 0)
        if limit > SEARCH_PAGE_MAX:
            return self.error_response(400, f"limit must be less than or equal to {SEARCH_PAGE_MAX}", "validation")
        if offset + limit > SEARCH_RESULT_CAP and offset >= SEARCH_RESULT_CAP:
            return self.error_response(400, "The query has exceeded the maximum number of results (10000). "
                                       "Refine your filters.", "validation")
        groups = body.get("filterGroups", [])
        if len(groups) > 5 or sum(len(g.get("filters", [])) for g in groups) > 18:
            return self.error_response(400, "Too many filter groups or filters", "validation")
        sorts = body.get("sorts", [])
        if len(sorts) > 1:
            return self.error_response(400, "Only one sort is allowed", "validation")
        modified_prop = OBJECT_TYPES[name][1]
        collection = self.collections[name]
        since = self._lower_bound(groups, modified_prop)
        properties = body.get("properties") or None
        if since is not None and self._only_modified_since(groups, sorts, modified_prop):
            # The incremental-sync query (one `modified >= t` filter, ascending by it): the store already
            # yields exactly those records in that order, so only the page is rendered. Rendering every
            # match for every page made a 1%-of-1M incremental sync wait on the simulator (O(matches)
            # per page); the answer is the same as the general path's.
            total = collection.count_modified_since(since)
            page = [self.render(name, i, e, properties)
                    for i, e in itertools.islice(collection.iter_modified_since(since), offset, offset + limit)]
            payload = {"total": total, "results": page}
            if offset + limit < total and offset + limit <= SEARCH_RESULT_CAP:
                payload["paging"] = {"next": {"after": str(offset + limit)}}
            return json_response(payload)
        candidates = collection.iter_modified_since(since) if since else collection.iter_alive()
        predicate = self._predicate(name, groups)
        sort = sorts[0] if sorts else None
        descending = bool(sort and str(sort.get("direction", "ASCENDING")).upper().startswith("DESC"))
        rendered = ((i, e, self.render(name, i, e, None)) for i, e in candidates)
        matches = (r for r in rendered if predicate(r[2]))
        if sort and (sort.get("propertyName") not in (modified_prop, "lastmodifieddate", "hs_lastmodifieddate")
                     or descending):
            key = sort.get("propertyName")
            ordered = sorted(matches, key=lambda r: (r[2]["properties"].get(key) or "", r[0]), reverse=descending)
            matches = iter(ordered)
        elif not sort:
            ordered = sorted(matches, key=lambda r: (r[1].created_at, r[0]))
            matches = iter(ordered)
        total, page, has_more = 0, [], False
        for i, entry, _ in matches:
            if offset <= total < offset + limit:
                page.append(self.render(name, i, entry, properties))
            elif total >= offset + limit:
                has_more = True
            total += 1
        payload: dict = {"total": total, "results": page}
        if has_more and offset + limit <= SEARCH_RESULT_CAP:
            payload["paging"] = {"next": {"after": str(offset + limit)}}
        return json_response(payload)

    @staticmethod
    def _only_modified_since(groups: list[dict], sorts: list[dict], modified_prop: str) -> bool:
        """One group with one `GTE` filter on the object's modification property, sorted ascending by it."""
        if len(groups) != 1 or len(groups[0].get("filters", [])) != 1 or len(sorts) != 1:
            return False
        only, sort = groups[0]["filters"][0], sorts[0]
        return (only.get("propertyName") == modified_prop and only.get("operator") == "GTE"
                and sort.get("propertyName") == modified_prop
                and not str(sort.get("direction", "ASCENDING")).upper().startswith("DESC"))

    @staticmethod
    def _lower_bound(groups: list[dict], modified_prop: str) -> datetime | None:
        """A lower bound on the modification time every group demands (lets the store skip old records)."""
        bounds = []
        for group in groups:
            group_bound = None
            for f in group.get("filters", []):
                if f.get("propertyName") in (modified_prop, "lastmodifieddate", "hs_lastmodifieddate") \
                        and f.get("operator") in ("GT", "GTE", "BETWEEN", "EQ"):
                    group_bound = parse_time(str(f.get("value")))
            if group_bound is None:
                return None
            bounds.append(group_bound)
        return min(bounds) if bounds else None

    @staticmethod
    def _predicate(name: str, groups: list[dict]) -> Callable[[dict], bool]:
        if not groups:
            return lambda obj: True
        time_props = {"lastmodifieddate", "hs_lastmodifieddate", "createdate", "closedate"}

        def value_of(obj: dict, prop: str):
            value = obj["properties"].get(prop)
            if prop == "hs_object_id":
                value = obj["id"]
            return value

        def compare(op: str, actual, expected, prop: str, high=None) -> bool:
            if op == "HAS_PROPERTY":
                return actual not in (None, "")
            if op == "NOT_HAS_PROPERTY":
                return actual in (None, "")
            if actual is None:
                return op in ("NEQ", "NOT_IN")
            if prop in time_props:
                actual_cmp, conv = parse_time(actual), parse_time
            else:
                try:
                    actual_cmp, conv = float(actual), float
                except ValueError:
                    actual_cmp, conv = str(actual).lower(), (lambda v: str(v).lower())
            if op in ("IN", "NOT_IN"):
                found = any(actual_cmp == conv(v) for v in expected)
                return found if op == "IN" else not found
            if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
                token = str(expected).lower().replace("*", "")
                found = token in str(actual).lower()
                return found if op == "CONTAINS_TOKEN" else not found
            target = conv(expected)
            return {
                "EQ": actual_cmp == target, "NEQ": actual_cmp != target, "LT": actual_cmp < target,
                "LTE": actual_cmp <= target, "GT": actual_cmp > target, "GTE": actual_cmp >= target,
                "BETWEEN": target <= actual_cmp <= conv(high) if high is not None else False,
            }.get(op, False)

        def matches(obj: dict) -> bool:
            for group in groups:
                if all(compare(f.get("operator", "EQ"), value_of(obj, f.get("propertyName", "")),
                               f.get("values") if f.get("operator") in ("IN", "NOT_IN") else f.get("value"),
                               f.get("propertyName", ""), f.get("highValue"))
                       for f in group.get("filters", [])):
                    return True
            return False

        return matches
