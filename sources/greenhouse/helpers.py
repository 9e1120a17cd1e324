"""Greenhouse v3 quirks: Link-header cursors that must travel alone, bare-array pages, rate-limit headers,
client-credentials tokens that may be revoked mid-run, and the key scan that stands in for a delete feed."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import requests

from canonry.errors import CanonryError, ErrorClass
from canonry.http import ProviderSession
from canonry.http_budget import RateBudget
from canonry.raw import TIMESTAMP, changed_definitions_page, iso_timestamps, raw_page
from canonry.runtime import ConnectionRuntime

from .settings import CUSTOM_FIELD_KEYS, KEY_SCAN_MARKER, RATE_LIMIT_INTERVAL_SECONDS


def session_for(runtime: ConnectionRuntime) -> ProviderSession:
    """Greenhouse's session: its rate-limit headers feed the connection's budget (the source's and the canary's;
    the client-credentials token is minted by the session's auth on the first request)."""
    return runtime.session(observe=observe_rate_limit)


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def observe_rate_limit(response: requests.Response, budget: RateBudget) -> None:
    """Correct the shared budget from `X-RateLimit-Limit` / `X-RateLimit-Remaining` (per 10 s)."""
    limit, remaining = response.headers.get("X-RateLimit-Limit"), response.headers.get("X-RateLimit-Remaining")
    budget.observe(int(remaining) if remaining and remaining.isdigit() else None,
                   int(limit) if limit and limit.isdigit() else None,
                   RATE_LIMIT_INTERVAL_SECONDS if limit else None)


def _get(session: ProviderSession, credential, url: str, params: dict | None) -> requests.Response:
    """GET once; a 401 (token revoked or expired early) re-mints the client-credentials token once."""
    try:
        return session.request("GET", url, params=params)
    except CanonryError as exc:
        # Only an API answer counts (a failed token request is final: its endpoint is the token URL).
        if exc.status != 401 or not hasattr(credential, "invalidate") or "://" in (exc.endpoint or ""):
            raise
        credential.invalidate()
        session.halt.clear()  # a new token is minted on the next request: this connection may send again
        return session.request("GET", url, params=params)


def pages(session: ProviderSession, credential, url: str, params: dict) -> Iterator[list[dict]]:
    """Every page of a list (see `pages_from`)."""
    for body, _ in pages_from(session, credential, url, params, None):
        yield body


def pages_from(session: ProviderSession, credential, url: str, params: dict,
               next_url: str | None) -> Iterator[tuple[list[dict], str | None]]:
    """The pages of a list with the `rel="next"` URL after each (None on the last): filters and per_page on
    the first request, then each next URL exactly as given (v3 rejects a cursor accompanied by any other
    parameter). `next_url`: continue there (a checkpoint) instead of at the first page."""
    first = next_url is None
    current: str | None = next_url or url
    while current:
        response = _get(session, credential, current, params if first else None)
        body = response._canonry_json  # type: ignore[attr-defined]
        if not isinstance(body, list):
            raise CanonryError(ErrorClass.PROVIDER_CONTRACT,
                               f"list response is not a JSON array (got {type(body).__name__})",
                               provider="greenhouse", connection_id=session.connection_id, endpoint=url)
        first = False
        current = response.links.get("next", {}).get("url")
        yield body, current


def page_table(records: list[dict], connection_id: str, extracted_at: datetime) -> pa.Table:
    """A v3 page as a raw arrow table (cursor: `updated_at`)."""
    missing = [r.get("id") for r in records if r.get("id") is None or not r.get("updated_at")]
    if missing:
        raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "records without id or updated_at in a v3 list page",
                           provider="greenhouse", connection_id=connection_id)
    return raw_page(records, connection_id=connection_id, remote_ids=[str(r["id"]) for r in records],
                    updated_at=iso_timestamps([r["updated_at"] for r in records]), extracted_at=extracted_at)


def since(table: pa.Table, lower: datetime) -> pa.Table:
    """Rows updated at or after `lower` (what an `updated_at=gte|lower` request would have returned)."""
    return table.filter(pc.greater_equal(table["remote_updated_at"], pa.scalar(lower, TIMESTAMP)))


def key_scan_table(table: pa.Table, scan_started: datetime) -> pa.Table:
    """The ids a key scan saw on one page, in the raw contract's columns: the cursor column holds the
    scan's start, the payload only the id (the record itself is in the object's table when it changed)."""
    count = table.num_rows
    return pa.Table.from_arrays([
        table["connection_id"], table["remote_id"],
        pa.array([scan_started] * count, TIMESTAMP), pa.array([False] * count, pa.bool_()),
        pa.array([orjson.dumps({"id": i}).decode() for i in table["remote_id"].to_pylist()], pa.string()),
        pa.array([scan_started] * count, TIMESTAMP),
    ], schema=table.schema)


def key_scan_marker(connection_id: str, scan_started: datetime, seen: int) -> pa.Table:
    """Written after the last page: the scan completed (a scan cut short never writes it)."""
    return raw_page([{"scan_started_at": iso_z(scan_started), "completed_at": iso_z(datetime.now(UTC)),
                      "ids_seen": seen}], connection_id=connection_id, remote_ids=[KEY_SCAN_MARKER],
                    updated_at=[scan_started], extracted_at=scan_started)


def sign_webhook(secret: str, body: bytes) -> str:
    """Greenhouse's `Signature` header: `sha256 <hex HMAC-SHA256(secret key, raw body)>`."""
    return "sha256 " + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_webhook_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Check the `Signature` header over the raw bytes (Greenhouse escapes unicode before signing) in
    constant time."""
    if not header or not secret:
        return False
    return hmac.compare_digest(sign_webhook(secret, body).encode(), header.strip().encode())


def custom_field_definitions_table(records: list[dict], known: dict[str, str], connection_id: str,
                                   extracted_at: datetime) -> tuple[pa.Table | None, dict[str, str]]:
    """A page of custom field definitions -> those new or changed (remote id `<field_type>:<id>`)."""
    return changed_definitions_page(
        records, remote_ids=[f"{r.get('field_type')}:{r['id']}" for r in records],
        fingerprint_keys=CUSTOM_FIELD_KEYS, known=known, connection_id=connection_id, extracted_at=extracted_at,
        updated_at=[_parse_iso(r.get("updated_at")) for r in records])


def _parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
