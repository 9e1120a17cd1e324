"""HubSpot quirks: string-typed properties, cursor per object, the 10,000-result search cap."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pyarrow as pa

from canonry.errors import CanonryError, ErrorClass
from canonry.http import ProviderSession
from canonry.raw import iso_timestamps, raw_page

from .settings import LIST_PAGE_SIZE, SEARCH_PAGE_SIZE, SEARCH_RESULT_CAP


def to_epoch_ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def page_table(results: list[dict], connection_id: str, extracted_at: datetime, archived: bool = False) -> pa.Table:
    """A HubSpot page as a raw arrow table; archived records carry their archive time as cursor."""
    stamps = [r.get("archivedAt") or r.get("updatedAt") for r in results] if archived \
        else [r.get("updatedAt") for r in results]
    return raw_page(results, connection_id=connection_id, remote_ids=[r["id"] for r in results],
                    updated_at=iso_timestamps(stamps), is_deleted=archived, extracted_at=extracted_at)


def list_pages(session: ProviderSession, url: str, params: dict) -> Iterator[list[dict]]:
    """Follow `paging.next.after` on a list endpoint."""
    after = None
    while True:
        query = {**params, "limit": params.get("limit", LIST_PAGE_SIZE)}
        if after:
            query["after"] = after
        body = session.get_json(url, params=query)
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "list response has no `results` array",
                               provider="hubspot", connection_id=session.connection_id, endpoint=url)
        yield body["results"]
        after = (body.get("paging") or {}).get("next", {}).get("after")
        if not after:
            return


def search_pages(session: ProviderSession, url: str, cursor_property: str, since: datetime,
                 properties: list[str]) -> Iterator[list[dict]]:
    """Records modified at or after `since`, ascending, working around the 10,000-result cap by
    restarting the query from the last cursor seen (boundary duplicates are dropped downstream)."""
    lower = since
    while True:
        offset, last_stamp, restarted = 0, None, False
        while True:
            body = session.post_json(url, json={
                "filterGroups": [{"filters": [{"propertyName": cursor_property, "operator": "GTE",
                                               "value": to_epoch_ms(lower)}]}],
                "sorts": [{"propertyName": cursor_property, "direction": "ASCENDING"}],
                "properties": properties, "limit": SEARCH_PAGE_SIZE, "after": str(offset),
            })
            results = body.get("results") if isinstance(body, dict) else None
            if not isinstance(results, list):
                raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "search response has no `results` array",
                                   provider="hubspot", connection_id=session.connection_id, endpoint=url)
            if results:
                yield results
                last_stamp = results[-1]["properties"].get(cursor_property) or results[-1].get("updatedAt")
            nxt = (body.get("paging") or {}).get("next", {}).get("after")
            if not nxt:
                return
            offset = int(nxt)
            if offset + SEARCH_PAGE_SIZE > SEARCH_RESULT_CAP:
                restarted = True
                break
        if restarted:
            new_lower = datetime.fromisoformat(last_stamp.replace("Z", "+00:00"))
            if new_lower <= lower:
                raise CanonryError(ErrorClass.PROVIDER_CONTRACT,
                                   f"more than {SEARCH_RESULT_CAP} records share the modification time {last_stamp}; "
                                   "the search API cannot page past them", provider="hubspot",
                                   connection_id=session.connection_id, endpoint=url)
            lower = new_lower


def merge_associations(session: ProviderSession, base_url: str, from_object: str, results: list[dict],
                       targets: tuple[str, ...]) -> None:
    """Search results carry no associations: read them per page (v4 batch read) and attach them in the
    list endpoint's shape, so staging reads one shape whichever endpoint brought the record."""
    if not results or not targets:
        return
    inputs = [{"id": r["id"]} for r in results]
    for target in targets:
        body = session.post_json(f"{base_url}/crm/v4/associations/{from_object}/{target}/batch/read",
                                 json={"inputs": inputs})
        by_id = {str(row["from"]["id"]): row.get("to", []) for row in body.get("results", [])}
        for record in results:
            linked = by_id.get(record["id"], [])
            if linked:
                record.setdefault("associations", {})[target] = {
                    "results": [{"id": str(t["toObjectId"]), "type": f"{from_object[:-1]}_to_{target[:-1]}"}
                                for t in linked]}
