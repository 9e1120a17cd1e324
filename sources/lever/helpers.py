"""Lever quirks: `{data, hasNext, next}` paging, epoch-millisecond timestamps, per-opportunity children,
the deleted feed's stubs, Basic-auth API keys, and webhook signatures over `token + triggeredAt`."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import datetime

import pyarrow as pa

from canonry.errors import CanonryError, ErrorClass
from canonry.http import ProviderSession
from canonry.raw import epoch_ms_timestamps, raw_page
from canonry.runtime import ConnectionRuntime, basic_key_auth, bearer_auth

from .settings import PAGE_SIZE


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def session_for(runtime: ConnectionRuntime) -> ProviderSession:
    """OAuth tokens go as Bearer; an API key goes as the Basic user name with a blank password."""
    auth = basic_key_auth(runtime.credential) if runtime.credential.kind == "api_key" \
        else bearer_auth(runtime.credential)
    return runtime.session(auth=auth)


def list_pages(session: ProviderSession, url: str, params: dict) -> Iterator[list[dict]]:
    """Every page of a list (see `list_pages_from`)."""
    for records, _ in list_pages_from(session, url, params, None):
        yield records


def list_pages_from(session: ProviderSession, url: str, params: dict,
                    offset: str | None) -> Iterator[tuple[list[dict], str | None]]:
    """Follow Lever's opaque `next` token (sent back as `offset`) until `hasNext` is false, from `offset`
    (a checkpoint) or the first page; each page comes with the token of the page after it (None: last)."""
    while True:
        query = {**params, "limit": PAGE_SIZE}
        if offset:
            query["offset"] = offset
        body = session.get_json(url, params=query)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "list response has no `data` array",
                               provider="lever", connection_id=session.connection_id, endpoint=url)
        offset = (body.get("next") if body.get("hasNext") else None) or None
        yield body["data"], offset
        if not offset:
            return


def page_table(records: list[dict], connection_id: str, extracted_at: datetime) -> pa.Table:
    """Records with `updatedAt` (ms) as raw rows."""
    return raw_page(records, connection_id=connection_id, remote_ids=[r["id"] for r in records],
                    updated_at=epoch_ms_timestamps([r.get("updatedAt") for r in records]),
                    extracted_at=extracted_at)


def deleted_table(stubs: list[dict], connection_id: str, extracted_at: datetime) -> pa.Table:
    """`/opportunities/deleted` stubs `{id, deletedAt, deletedBy}`: deleted rows stamped with deletedAt."""
    return raw_page(stubs, connection_id=connection_id, remote_ids=[r["id"] for r in stubs],
                    updated_at=epoch_ms_timestamps([r.get("deletedAt") for r in stubs]), is_deleted=True,
                    extracted_at=extracted_at)


def whole_table(records: list[dict], connection_id: str, extracted_at: datetime) -> pa.Table:
    """Objects without a modification time (users, archive reasons): the read time orders versions."""
    return raw_page(records, connection_id=connection_id, remote_ids=[r["id"] for r in records],
                    updated_at=[extracted_at] * len(records), extracted_at=extracted_at)


def children_table(session: ProviderSession, url_template: str, parents: pa.Table,
                   extracted_at: datetime) -> pa.Table | None:
    """For each live opportunity of a page: read its interviews/offers (all pages) into one raw row,
    remote_id = the opportunity id, stamped with the opportunity's updatedAt, payload = the JSON array.
    An opportunity deleted since it was listed answers 404: skipped (the deleted feed reports it)."""
    live = parents.filter(pa.compute.invert(parents["is_deleted"]))
    records, ids, stamps = [], [], []
    for remote_id, stamp in zip(live["remote_id"].to_pylist(), live["remote_updated_at"].to_pylist(), strict=True):
        url = url_template.format(id=remote_id)
        try:
            children = [item for page in list_pages(session, url, {}) for item in page]
        except CanonryError as exc:
            if exc.status == 404:
                continue
            raise
        records.append(children)
        ids.append(remote_id)
        stamps.append(stamp)
    if not records:
        return None
    connection_id = parents["connection_id"][0].as_py()
    return raw_page(records, connection_id=connection_id, remote_ids=ids, updated_at=stamps,  # type: ignore[arg-type]
                    extracted_at=extracted_at)


def webhook_signature(signature_token: str, token: str, triggered_at: int | str) -> str:
    return hmac.new(signature_token.encode(), f"{token}{triggered_at}".encode(), hashlib.sha256).hexdigest()


def verify_webhook(body: dict, signature_token: str) -> bool:
    """Lever signs `token + str(triggeredAt)` (not the body) with the webhook's signature token.
    Callers should also reject stale `triggeredAt` values and replayed tokens."""
    token, triggered_at, presented = body.get("token"), body.get("triggeredAt"), body.get("signature")
    if not isinstance(token, str) or triggered_at is None or not isinstance(presented, str):
        return False
    return hmac.compare_digest(webhook_signature(signature_token, token, triggered_at), presented)
