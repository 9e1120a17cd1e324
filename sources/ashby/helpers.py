"""Ashby quirks: RPC POST lists, HTTP 200 `success:false` logic errors, sync tokens, signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import datetime

import orjson
import pyarrow as pa

from canonry.errors import CanonryError, ErrorClass
from canonry.http import ProviderSession
from canonry.http_telemetry import endpoint_template
from canonry.raw import iso_timestamps, raw_page
from canonry.runtime import ConnectionRuntime, basic_key_auth

from .settings import PAGE_SIZE, PERMISSION_ERRORS, RESTART_WITH_FULL_PASS, Endpoint


def session_for(runtime: ConnectionRuntime) -> ProviderSession:
    """Ashby's session: the API key as Basic auth user name (the source's and the canary's)."""
    return runtime.session(auth=basic_key_auth(runtime.credential))


class SyncTokenRejected(Exception):
    """Ashby refused a sync token or cursor (expired, invalid, too many changes): run a full pass."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def error_code(body: dict) -> tuple[str, str, str | None]:
    """(code, message, requestId) of a `success:false` body; `errors` may be strings or objects."""
    info = body.get("errorInfo") if isinstance(body.get("errorInfo"), dict) else {}
    errors = body.get("errors") or []
    first = errors[0] if isinstance(errors, list) and errors else None
    if isinstance(first, dict):
        first = first.get("code") or first.get("message")
    code = str(info.get("code") or first or "unknown_error")
    message = str(info.get("message") or (first if first != code else "") or "no message")
    return code, message, info.get("requestId")


def call(session: ProviderSession, url: str, body: dict) -> dict:
    """POST one RPC call and check Ashby's `success` flag (logic errors come back as HTTP 200)."""
    answer = session.post_json(url, json=body, headers={"Accept": "application/json; version=1"})
    if not isinstance(answer, dict):
        raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "the answer is not a JSON object", provider="ashby",
                           connection_id=session.connection_id, endpoint=endpoint_template(url), status=200)
    if answer.get("success") is True:
        if not isinstance(answer.get("results"), list):
            raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "success:true answer has no `results` array",
                               provider="ashby", connection_id=session.connection_id,
                               endpoint=endpoint_template(url), status=200)
        return answer
    code, message, request_id = error_code(answer)
    if code in RESTART_WITH_FULL_PASS:
        raise SyncTokenRejected(code, message)
    error_class = ErrorClass.PERMISSION_DENIED if code in PERMISSION_ERRORS else ErrorClass.PROVIDER_CONTRACT
    suffix = f" (requestId {request_id})" if request_id else ""
    raise CanonryError(error_class, f"Ashby answered success:false with error `{code}`: {message}{suffix}",
                       provider="ashby", connection_id=session.connection_id, endpoint=endpoint_template(url),
                       status=200)


class Pass:
    """One pass over a list endpoint: full (no token) or incremental (with a sync token).

    Iterating yields each page's results; afterwards `sync_token` holds the token Ashby returned on
    the last page (stored by the caller only once the whole pass has been loaded), and `pages` the
    number of calls made.
    """

    def __init__(self, session: ProviderSession, url: str, extra: dict | None = None,
                 sync_token: str | None = None) -> None:
        self.session, self.url, self.extra, self.token_in = session, url, dict(extra or {}), sync_token
        self.sync_token: str | None = None
        self.pages = 0

    def __iter__(self) -> Iterator[list[dict]]:
        for results, _ in self.pages_from(None):
            yield results

    def pages_from(self, cursor: str | None) -> Iterator[tuple[list[dict], str | None]]:
        """The pass's pages from `cursor` (a checkpoint) or the first, each with the cursor of the page
        after it (None on the last, when `sync_token` is set)."""
        while True:
            body = {**self.extra, "limit": PAGE_SIZE}
            if self.token_in:
                body["syncToken"] = self.token_in
            if cursor:
                body["cursor"] = cursor
            answer = call(self.session, self.url, body)
            self.pages += 1
            if not answer.get("moreDataAvailable"):
                self.sync_token = answer.get("syncToken")
                yield answer["results"], None
                return
            cursor = answer.get("nextCursor")
            if not cursor:
                raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "moreDataAvailable without a nextCursor",
                                   provider="ashby", connection_id=self.session.connection_id,
                                   endpoint=endpoint_template(self.url), status=200)
            yield answer["results"], cursor


def _at(record: dict, path: str):
    value = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def updated_at(record: dict, endpoint: Endpoint) -> str | None:
    for path in endpoint.updated_at:
        value = _at(record, path)
        if value:
            return value
    return None


def page_table(results: list[dict], endpoint: Endpoint, connection_id: str, extracted_at: datetime) -> pa.Table:
    return raw_page(results, connection_id=connection_id, remote_ids=[r["id"] for r in results],
                    updated_at=iso_timestamps([updated_at(r, endpoint) for r in results]),
                    extracted_at=extracted_at)


def tombstones(remote_ids: list[str], connection_id: str, seen_at: datetime) -> pa.Table:
    """Rows for records gone from a whole-list endpoint (they were listed before, archived included)."""
    return raw_page([{"id": i, "deleted": True} for i in remote_ids], connection_id=connection_id,
                    remote_ids=remote_ids, updated_at=[seen_at] * len(remote_ids), is_deleted=True,
                    extracted_at=seen_at)


def fingerprint(record: dict) -> str:
    return hashlib.blake2b(orjson.dumps(record, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()


def full_pass_marker(object_name: str, started: datetime, connection_id: str, records: int, reason: str,
                     pages: int) -> pa.Table:
    """The row that says "a full pass of <object> started at <started> completed": staging flags records
    whose latest version was extracted before it as deleted (gone from Ashby between full passes)."""
    payload = {"object": object_name, "started_at": started.isoformat(), "records": records, "reason": reason,
               "pages": pages}
    return raw_page([payload], connection_id=connection_id, remote_ids=[object_name], updated_at=[started],
                    extracted_at=started)


def sign_webhook(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_webhook_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Check `Ashby-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>` in constant time."""
    if not header or not secret:
        return False
    return hmac.compare_digest(sign_webhook(secret, body), header.strip())


