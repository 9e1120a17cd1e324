"""Pipedrive quirks: the `{success, data, additional_data}` envelope, two pagination styles (v2 cursor,
v1 start/limit), three timestamp formats, `x-ratelimit-*` headers, API-token header auth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import requests

from canonry.errors import CanonryError, ErrorClass
from canonry.http_budget import RateBudget
from canonry.http_classify import default_classifier
from canonry.http_telemetry import endpoint_template
from canonry.raw import TIMESTAMP, iso_timestamps, raw_page
from canonry.runtime import ConnectionRuntime, header_key_auth

from .settings import API_TOKEN_HEADER, PAGE_SIZE

PROVIDER = "pipedrive"
BURST_INTERVAL_SECONDS = 2.0


# -- time formats ---------------------------------------------------------------------------------
def rfc3339(moment: datetime) -> str:
    """API v2 filters: `2025-01-01T10:20:00Z` (whole seconds, floored)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def v1_timestamp(moment: datetime) -> str:
    """API v1 filters (`/recents?since_timestamp=`): `YYYY-MM-DD HH:MM:SS`, UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def v1_timestamps(values: list[str | None]) -> pa.Array:
    """`YYYY-MM-DD HH:MM:SS` (UTC, no zone) -> UTC timestamps, per page."""
    strings = pa.array(values, pa.string())
    strings = pc.replace_substring_regex(strings, r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)$", r"\1T\2Z")
    return pc.cast(strings, TIMESTAMP)


def floor_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


# -- auth, classification, rate-limit headers --------------------------------------------------------
def auth_for(runtime: ConnectionRuntime) -> Callable[[requests.PreparedRequest], None] | None:
    """API tokens go in the `x-api-token` header (never the `api_token` query parameter, which would put
    the secret in every URL); OAuth access tokens are bearer tokens (the runtime's default)."""
    if runtime.credential.kind == "api_key":
        return header_key_auth(runtime.credential, API_TOKEN_HEADER)
    return None


def classify(response: requests.Response) -> tuple[ErrorClass, str] | None:
    """Pipedrive's answers on top of the default mapping: 402 is a closed company account (trial over,
    unpaid), a 429 with no daily requests left is the daily token budget, not a burst."""
    status = response.status_code
    if status == 402:
        return ErrorClass.PERMISSION_DENIED, "the Pipedrive company account is not open (trial expired or unpaid)"
    if status == 429 and response.headers.get("x-daily-requests-left") == "0":
        return ErrorClass.QUOTA_EXHAUSTED, "the daily API budget of this Pipedrive company is spent"
    return default_classifier(response)


def observe(response: requests.Response, budget: RateBudget) -> None:
    """Correct the shared budget from `x-ratelimit-*`; on a 429 wait for the window to reset."""
    headers = response.headers
    try:
        remaining = int(headers["x-ratelimit-remaining"]) if "x-ratelimit-remaining" in headers else None
        limit = int(headers["x-ratelimit-limit"]) if "x-ratelimit-limit" in headers else None
        reset = float(headers["x-ratelimit-reset"]) if "x-ratelimit-reset" in headers else None
    except ValueError:
        return
    budget.observe(remaining, limit, BURST_INTERVAL_SECONDS if limit else None)
    if response.status_code == 429 or remaining == 0:
        budget.pause(reset if reset is not None else BURST_INTERVAL_SECONDS)


def session_for(runtime: ConnectionRuntime):
    return runtime.session(auth=auth_for(runtime), classifier=classify, observe=observe)


# -- envelope and pagination --------------------------------------------------------------------------
def _envelope(session, url: str, params: dict) -> dict:
    body = session.get_json(url, params=params)
    if not isinstance(body, dict) or body.get("success") is not True:
        detail = body.get("error") if isinstance(body, dict) else None
        raise CanonryError(ErrorClass.PROVIDER_CONTRACT,
                           f"answer without success:true ({detail or 'no envelope'})", provider=PROVIDER,
                           connection_id=session.connection_id, endpoint=endpoint_template(url))
    data = body.get("data")
    if data is not None and not isinstance(data, list):
        raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "list answer whose `data` is not an array",
                           provider=PROVIDER, connection_id=session.connection_id, endpoint=endpoint_template(url))
    return body


def cursor_pages(session, url: str, params: dict) -> Iterator[list[dict]]:
    """API v2: every page (see `cursor_pages_from`)."""
    for records, _ in cursor_pages_from(session, url, params, None):
        yield records


def cursor_pages_from(session, url: str, params: dict, cursor: str | None) -> Iterator[tuple[list[dict], str | None]]:
    """API v2: follow `additional_data.next_cursor` until it is null, from `cursor` (a checkpoint) or the
    first page; each page comes with the cursor of the page after it."""
    while True:
        query = {**params, "limit": params.get("limit", PAGE_SIZE)}
        if cursor:
            query["cursor"] = cursor
        body = _envelope(session, url, query)
        cursor = (body.get("additional_data") or {}).get("next_cursor") or None
        yield body.get("data") or [], cursor
        if not cursor:
            return


def offset_pages(session, url: str, params: dict) -> Iterator[list[dict]]:
    """API v1: every page (see `offset_pages_from`)."""
    for records, _ in offset_pages_from(session, url, params, None):
        yield records


def offset_pages_from(session, url: str, params: dict, start: int | None) -> Iterator[tuple[list[dict], int | None]]:
    """API v1: `start`/`limit` until `additional_data.pagination.more_items_in_collection` is false, from
    `start` (a checkpoint) or 0; each page comes with the start of the page after it."""
    start = start or 0
    while True:
        body = _envelope(session, url, {**params, "start": start, "limit": params.get("limit", PAGE_SIZE)})
        pagination = (body.get("additional_data") or {}).get("pagination") or {}
        following = int(pagination.get("next_start", start + PAGE_SIZE)) \
            if pagination.get("more_items_in_collection") else None
        yield body.get("data") or [], following
        if following is None:
            return
        start = following


# -- raw pages ----------------------------------------------------------------------------------------
def v2_table(records: list[dict], connection_id: str, extracted_at: datetime) -> pa.Table:
    """An API v2 page; deleted deals (`is_deleted: true`, `status: deleted`) are flagged."""
    return raw_page(records, connection_id=connection_id, remote_ids=[r["id"] for r in records],
                    updated_at=iso_timestamps([r.get("update_time") for r in records]),
                    is_deleted=[bool(r.get("is_deleted")) for r in records], extracted_at=extracted_at)


def v1_table(records: list[dict], connection_id: str, extracted_at: datetime, stamp_key: str = "update_time",
             deleted: bool | None = None) -> pa.Table:
    """An API v1 page (notes, users, recents bodies): `active_flag: false` means deleted."""
    flags = [deleted if deleted is not None else r.get("active_flag") is False for r in records] \
        if deleted is not False else False
    return raw_page(records, connection_id=connection_id, remote_ids=[r["id"] for r in records],
                    updated_at=v1_timestamps([r.get(stamp_key) for r in records]), is_deleted=flags,
                    extracted_at=extracted_at)


def lead_table(records: list[dict], connection_id: str, extracted_at: datetime,
               deleted: bool = False) -> pa.Table:
    """Leads: UUID ids, ISO timestamps with milliseconds."""
    return raw_page(records, connection_id=connection_id, remote_ids=[r["id"] for r in records],
                    updated_at=iso_timestamps([r.get("update_time") for r in records]), is_deleted=deleted,
                    extracted_at=extracted_at)


def newest(table: pa.Table, current: datetime | None) -> datetime | None:
    if table.num_rows == 0:
        return current
    value = pc.max(table["remote_updated_at"]).as_py()
    return value if current is None or (value is not None and value > current) else current


def is_custom_field_key(key: object) -> bool:
    """Pipedrive keys custom fields by a 40-character hexadecimal hash; system fields by their name."""
    return isinstance(key, str) and len(key) == 40 and all(c in "0123456789abcdef" for c in key)


def custom_field_table(records: list[dict], entity: str, known: dict[str, str], connection_id: str,
                       extracted_at: datetime) -> tuple[pa.Table | None, dict[str, str]]:
    """A page of field definitions -> the custom ones that are new or changed (remote id `<entity>:<key>`,
    `entity` added to the payload), and their fingerprints."""
    fresh, fingerprints = [], {}
    for record in records:
        if not is_custom_field_key(record.get("key")):
            continue
        remote_id = f"{entity}:{record['key']}"
        fingerprint = orjson.dumps([record.get("name"), record.get("field_type"), record.get("options"),
                                    record.get("active_flag")]).decode()
        if known.get(remote_id) != fingerprint:
            fresh.append({**record, "entity": entity})
            fingerprints[remote_id] = fingerprint
    if not fresh:
        return None, fingerprints
    table = raw_page(fresh, connection_id=connection_id, remote_ids=[f"{entity}:{r['key']}" for r in fresh],
                     updated_at=v1_timestamps([r.get("update_time") for r in fresh]), is_deleted=False,
                     extracted_at=extracted_at)
    return table, fingerprints
