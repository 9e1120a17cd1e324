"""HubSpot quirks: string-typed properties, cursor per object, the 10,000-result search cap."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from datetime import datetime

import orjson
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
    for results, _ in list_pages_from(session, url, params, None):
        yield results


def list_pages_from(session: ProviderSession, url: str, params: dict,
                    after: str | None) -> Iterator[tuple[list[dict], str | None]]:
    """Pages of a list endpoint from the `after` token on, each with the token of the next page
    (None after the last page): what a checkpoint stores."""
    while True:
        query = {**params, "limit": params.get("limit", LIST_PAGE_SIZE)}
        if after:
            query["after"] = after
        body = session.get_json(url, params=query)
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "list response has no `results` array",
                               provider="hubspot", connection_id=session.connection_id, endpoint=url)
        after = (body.get("paging") or {}).get("next", {}).get("after")
        yield body["results"], after or None
        if not after:
            return


def search_pages(session: ProviderSession, url: str, cursor_property: str, since: datetime,
                 properties: list[str]) -> Iterator[list[dict]]:
    """Records modified at or after `since`, ascending (see `search_pages_from`)."""
    for results, _ in search_pages_from(session, url, cursor_property, (since.isoformat(), 0), properties):
        yield results


def search_pages_from(session: ProviderSession, url: str, cursor_property: str, position: tuple[str, int],
                      properties: list[str]) -> Iterator[tuple[list[dict], tuple[str, int] | None]]:
    """Records modified at or after a lower bound, ascending, from `position` = (lower bound ISO, offset);
    each page comes with the position of the next one (None after the last). The 10,000-result cap is
    worked around by restarting the query from the last cursor seen (boundary duplicates are dropped
    downstream)."""
    lower, offset = datetime.fromisoformat(position[0]), int(position[1])
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
        nxt = (body.get("paging") or {}).get("next", {}).get("after")
        following: tuple[str, int] | None = None
        if nxt:
            offset = int(nxt)
            following = (lower.isoformat(), offset)
            if offset + SEARCH_PAGE_SIZE > SEARCH_RESULT_CAP:
                last_stamp = results[-1]["properties"].get(cursor_property) or results[-1].get("updatedAt")
                new_lower = datetime.fromisoformat(last_stamp.replace("Z", "+00:00"))
                if new_lower <= lower:
                    raise CanonryError(ErrorClass.PROVIDER_CONTRACT,
                                       f"more than {SEARCH_RESULT_CAP} records share the modification time "
                                       f"{last_stamp}; the search API cannot page past them", provider="hubspot",
                                       connection_id=session.connection_id, endpoint=url)
                lower, offset = new_lower, 0
                following = (lower.isoformat(), 0)
        yield results, following
        if following is None:
            return


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


def custom_property_table(definitions: list[dict], object_name: str, known: dict[str, str], connection_id: str,
                          extracted_at: datetime) -> tuple[pa.Table | None, dict[str, str]]:
    """Custom property definitions -> those new or changed (remote id `<object>:<name>`, `object` added to
    the payload), and their fingerprints."""
    fresh, fingerprints = [], {}
    for definition in definitions:
        remote_id = f"{object_name}:{definition['name']}"
        fingerprint = orjson.dumps([definition.get(k) for k in ("label", "type", "fieldType", "options",
                                                                 "showCurrencySymbol", "referencedObjectType")]).decode()
        if known.get(remote_id) != fingerprint:
            fresh.append({**definition, "object": object_name})
            fingerprints[remote_id] = fingerprint
    if not fresh:
        return None, fingerprints
    return raw_page(fresh, connection_id=connection_id, remote_ids=[f"{object_name}:{d['name']}" for d in fresh],
                    updated_at=iso_timestamps([d.get("updatedAt") for d in fresh]), extracted_at=extracted_at), \
        fingerprints


def sign_webhook_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """`X-HubSpot-Signature-v3`: base64 HMAC-SHA256(client secret, METHOD + URI + raw body + timestamp ms)."""
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(client_secret.encode(), message, hashlib.sha256).digest()).decode()


def verify_webhook_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp: str,
                      header: str | None) -> bool:
    """Check a v3 signature in constant time (the caller enforces the 5-minute timestamp window)."""
    if not header or not client_secret:
        return False
    expected = sign_webhook_v3(client_secret, method, uri, body, timestamp)
    return hmac.compare_digest(expected.encode(), header.strip().encode())
