"""The sandbox's page cache (`sandbox serve --page-cache`, the benchmarks' instrument) serves the bytes an
uncached sandbox renders, and a write to a collection invalidates that collection's cached pages."""

from __future__ import annotations

import requests

from canonry.sandbox import DEFAULT_TOKENS

HEADERS = {"Authorization": f"Bearer {DEFAULT_TOKENS['hubspot']}"}
LIST = {"limit": "100", "properties": "email,firstname,lastmodifieddate", "associations": "companies"}


def _pages(base_url: str, params: dict) -> list[bytes]:
    bodies, after = [], None
    while True:
        query = {**params, "after": after} if after else params
        response = requests.get(f"{base_url}/crm/v3/objects/contacts", params=query, headers=HEADERS, timeout=30)
        response.raise_for_status()
        bodies.append(response.content)
        after = (response.json().get("paging") or {}).get("next", {}).get("after")
        if not after:
            return bodies


def test_cached_pages_equal_rendered_pages_and_writes_invalidate_them(sandbox_factory):
    plain = sandbox_factory("hubspot", scale=250, rate_limits=False)
    cached = sandbox_factory("hubspot", scale=250, rate_limits=False, page_cache=True)
    # Paging links carry each server's own base URL: compare with it replaced.
    def normalise(bodies: list[bytes], server) -> list[bytes]:
        return [b.replace(server.base_url.encode(), b"BASE") for b in bodies]

    expected = normalise(_pages(plain.base_url, LIST), plain)
    first = normalise(_pages(cached.base_url, LIST), cached)
    second = normalise(_pages(cached.base_url, LIST), cached)
    assert len(expected) == 3 and first == expected and second == expected
    assert len(cached.simulator.page_cache.pages) == 3

    requests.post(f"{cached.base_url}/_sandbox/mutate",
                  json={"object": "contacts", "update": ["100000002"], "delete": ["100000003"], "seed": 3},
                  timeout=30).raise_for_status()
    after = normalise(_pages(cached.base_url, LIST), cached)
    cached.state.page_cache = False  # the same sandbox state, rendered afresh
    rendered = normalise(_pages(cached.base_url, LIST), cached)
    assert after == rendered and after != expected
    assert b'"100000003"' not in after[0] and b'"100000003"' in expected[0]  # the deleted record left page 1
