"""The HubSpot sandbox's search: the incremental-sync query (one `modified >= t` filter, ascending) takes a
fast path that renders only the page; its answers equal the general path's (every match rendered and
filtered), page by page, after updates, creates and deletes."""

from __future__ import annotations

from datetime import datetime

import pytest
import requests

from canonry.sandbox import DEFAULT_TOKENS
from tests.helpers import mutate

HEADERS = {"Authorization": f"Bearer {DEFAULT_TOKENS['hubspot']}"}
# A filter every record passes: it sends the same query down the general path.
ALWAYS = {"propertyName": "hs_object_id", "operator": "HAS_PROPERTY"}


def _search(base_url: str, object_name: str, prop: str, since_ms: int, *, general: bool) -> list[dict]:
    filters = [{"propertyName": prop, "operator": "GTE", "value": str(since_ms)}] + ([ALWAYS] if general else [])
    bodies, after = [], "0"
    while after is not None:
        response = requests.post(f"{base_url}/crm/v3/objects/{object_name}/search", headers=HEADERS, timeout=30,
                                 json={"filterGroups": [{"filters": filters}], "limit": 40, "after": after,
                                       "sorts": [{"propertyName": prop, "direction": "ASCENDING"}],
                                       "properties": ["email", "firstname", "name", prop]})
        response.raise_for_status()
        body = response.json()
        bodies.append(body)
        after = (body.get("paging") or {}).get("next", {}).get("after")
    return bodies


@pytest.mark.parametrize(("object_name", "prop"), [("contacts", "lastmodifieddate"),
                                                    ("companies", "hs_lastmodifieddate")])
def test_fast_search_answers_like_the_general_path(sandbox_factory, object_name, prop):
    server = sandbox_factory("hubspot", scale=300, rate_limits=False)
    mutate(server, object_name, update=25, create=6, delete=4)
    listed = requests.get(f"{server.base_url}/crm/v3/objects/{object_name}", headers=HEADERS, timeout=30,
                          params={"limit": 100, "properties": prop}).json()["results"]
    middle = sorted(r["properties"][prop] for r in listed)[60]
    middle_ms = int(datetime.fromisoformat(middle.replace("Z", "+00:00")).timestamp() * 1000)
    for since_ms in (0, middle_ms):
        fast = _search(server.base_url, object_name, prop, since_ms, general=False)
        general = _search(server.base_url, object_name, prop, since_ms, general=True)
        assert fast == general
        assert sum(len(b["results"]) for b in fast) == fast[0]["total"] > 30
