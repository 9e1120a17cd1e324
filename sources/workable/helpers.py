"""Workable quirks: the account's own host, `paging.next` URLs, exclusive `updated_after`, lists without a
modification time, and tombstones for records that vanish from a whole-read list."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import urlsplit

import pyarrow as pa

from canonry.errors import CanonryError, ConfigError, ErrorClass
from canonry.http import ProviderSession
from canonry.raw import iso_timestamps, raw_page
from canonry.runtime import ConnectionRuntime, bearer_auth

from .settings import API_PREFIX, PAGE_SIZE, SUBDOMAIN_PLACEHOLDER, Listing


def api_root(runtime: ConnectionRuntime) -> str:
    """`<base_url>/spi/v3`; a connection that names no account host is a configuration error."""
    if SUBDOMAIN_PLACEHOLDER in runtime.base_url:
        raise ConfigError("a Workable connection needs its account's host: set `base_url: "
                          "https://<your subdomain>.workable.com` in the connections file",
                          provider="workable", connection_id=runtime.connection_id)
    return runtime.base_url + API_PREFIX


def session_for(runtime: ConnectionRuntime) -> ProviderSession:
    """Account tokens (and OAuth access tokens) go as `Authorization: Bearer`."""
    return runtime.session(auth=bearer_auth(runtime.credential))


def list_pages(session: ProviderSession, root: str, listing: Listing, params: dict[str, str]) -> Iterator[list[dict]]:
    """Every page of a list: the first at `limit=100`, then the `paging.next` URLs Workable hands out
    (they carry the query and the `since_id` of the next page) until an answer has none."""
    url: str | None = root + listing.path
    query: dict[str, str] | None = {**dict(listing.params), **params, **({"limit": str(PAGE_SIZE)}
                                                                         if listing.paged else {})}
    while url is not None:
        body = session.get_json(url, params=query)
        records = body if listing.key is None else (body.get(listing.key) if isinstance(body, dict) else None)
        if not isinstance(records, list):
            raise CanonryError(ErrorClass.PROVIDER_CONTRACT,
                               f"{listing.path} answered no `{listing.key or 'array'}` list",
                               provider="workable", connection_id=session.connection_id, endpoint=listing.path)
        yield records
        url = ((body.get("paging") or {}).get("next") if isinstance(body, dict) and listing.paged else None)
        query = None
        if url is not None and not _same_origin(url, root):
            # The token goes with every request: never to a host other than the account's.
            raise CanonryError(ErrorClass.PROVIDER_CONTRACT, f"paging.next points away from the account's host: "
                               f"{urlsplit(url).netloc}", provider="workable", connection_id=session.connection_id,
                               endpoint=listing.path)


def _same_origin(url: str, root: str) -> bool:
    a, b = urlsplit(url), urlsplit(root)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def page_table(records: list[dict], listing: Listing, connection_id: str, extracted_at: datetime) -> pa.Table:
    """One page as raw rows: the record's own modification time, else the read time."""
    ids = [str(r[listing.id_field]) for r in records]
    updated = iso_timestamps([r.get(listing.updated_field) for r in records]) if listing.updated_field \
        else [extracted_at] * len(records)
    return raw_page(records, connection_id=connection_id, remote_ids=ids, updated_at=updated,
                    extracted_at=extracted_at)


def vanished_table(ids: list[str], connection_id: str, extracted_at: datetime) -> pa.Table:
    """Tombstones for records a whole-read list no longer shows (payload: the id only)."""
    return raw_page([{"id": i} for i in ids], connection_id=connection_id, remote_ids=ids,
                    updated_at=[extracted_at] * len(ids), is_deleted=True, extracted_at=extracted_at)


def sign_webhook(key: str, body: bytes) -> str:
    """`X-Workable-Signature`: hex HMAC-SHA256 of the raw body, keyed with the account token (or the OAuth
    app's secret)."""
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def verify_webhook_signature(key: str, body: bytes, header: str | None) -> bool:
    return bool(header) and hmac.compare_digest(sign_webhook(key, body), header.strip())
