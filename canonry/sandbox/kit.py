"""What every provider simulator shares, so a simulator module holds only what its provider does differently.

* `SimulatorBase`: the default `truth()` (every index of a collection, rendered, with its deleted flag and
  modification time in the provider's own format), and the `guard` contract.
* `guarded`: the decorator every API handler wears. It runs the simulator's `guard(request)` (credentials,
  then rate limits) and either answers the guard's error or calls the handler with the rate-limit headers
  the answer must carry.
* `OAuthRoutes`: the authorization-code half of a provider's OAuth routes over the shared `OAuthServer`
  (auto-approved consent with a redirect, code and refresh grants); a provider supplies its error bodies.
* Codecs: opaque base64url JSON cursors, integer ids from an offset, HTTP Basic credentials, form bodies
  (parsed here: starlette's form parser needs python-multipart, which the project does not depend on).
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.engine import SandboxState
from canonry.sandbox.oauth_server import IssuedToken, OAuthError, OAuthServer

Headers = dict[str, str]
Handler = Callable[[Any, Request, Headers], Awaitable[Response]]


class SimulatorBase:
    """The shared half of a simulator (see the module docstring); a subclass sets `slug`, `state`,
    `collections`, and implements `render` and `guard`."""

    slug: ClassVar[str]
    state: SandboxState
    collections: dict[str, Collection]

    def guard(self, request: Request, **options: Any) -> tuple[Response | None, Headers]:
        """(the error to answer or None, the rate-limit headers every answer carries)."""
        raise NotImplementedError

    def render(self, name: str, index: int, entry: Entry) -> dict:
        raise NotImplementedError

    # -- truth: what the control endpoint reports for tests ------------------------------------------
    def truth(self, object_name: str) -> list[dict]:
        collection = self.collections[object_name]
        out = []
        for index in range(collection.size):
            entry = collection.get(index)
            record = self.truth_record(object_name, index, entry)
            out.append({"id": collection.id_of(index), "deleted": self.truth_deleted(object_name, index, entry),
                        "updated_at": self.truth_time(entry, record), "record": record})
        return out

    def truth_record(self, name: str, index: int, entry: Entry) -> dict:
        return self.render(name, index, entry)

    def truth_deleted(self, name: str, index: int, entry: Entry) -> bool:
        return entry.deleted_at is not None

    def truth_time(self, entry: Entry, record: dict) -> Any:
        """The modification time as the provider writes it (ISO-8601 unless a simulator says otherwise)."""
        return iso_millis(entry.modified_at)


def guarded(handler: Handler | None = None, **guard_options: Any):
    """`@guarded` or `@guarded(search=True)`: run `self.guard(request, **guard_options)` first."""

    def wrap(inner: Handler) -> Callable[[Any, Request], Awaitable[Response]]:
        @functools.wraps(inner)
        async def handle(self, request: Request) -> Response:
            error, headers = self.guard(request, **guard_options)
            if error is not None:
                return error
            return await inner(self, request, headers)
        return handle

    return wrap(handler) if handler is not None else wrap


class OAuthRoutes:
    """Authorization-code routes over `self.oauth`. A provider overrides `authorize_refusal` (checks of
    its own before a code is issued) and `authorize_error` (its error body)."""

    oauth: OAuthServer
    default_scope: ClassVar[str] = ""
    unsupported_grant: ClassVar[str] = "grant_type {grant!r} is not supported"

    def authorize_refusal(self, query: Mapping[str, str]) -> Response | None:
        return None

    def authorize_error(self, exc: OAuthError) -> Response:
        raise NotImplementedError

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        refusal = self.authorize_refusal(q)
        if refusal is not None:
            return refusal
        try:
            code = self.oauth.authorize(q.get("client_id", ""), q.get("redirect_uri", ""),
                                        q.get("scope", self.default_scope), q.get("code_challenge"),
                                        q.get("code_challenge_method"))
        except OAuthError as exc:
            return self.authorize_error(exc)
        params = {"code": code}
        if q.get("state") is not None:
            params["state"] = q["state"]
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode(params)}", status_code=302)

    async def token_request(self, request: Request) -> tuple[dict[str, str], tuple[str, str] | None]:
        """A token request's form and its HTTP Basic client credentials (None when absent or malformed:
        the client then authenticates with the form's client_id/client_secret, or fails)."""
        form = await read_form(request)
        try:
            return form, basic_credentials(request)
        except ValueError:
            return form, None

    def grant(self, form: dict[str, str], basic: tuple[str, str] | None = None) -> IssuedToken:
        """The token endpoint's code and refresh grants; OAuthError for anything else."""
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self.oauth.exchange_code(form, basic)
        if grant == "refresh_token":
            return self.oauth.refresh(form, basic)
        raise OAuthError("unsupported_grant_type", self.unsupported_grant.format(grant=grant))


# -- codecs --------------------------------------------------------------------------------------------
def iso_millis(ts: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z, the way most providers write times."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def encode_cursor(payload: Any, *, sort_keys: bool = False, separators: tuple[str, str] | None = (",", ":")) -> str:
    """An opaque cursor: unpadded base64url of the JSON of `payload`."""
    raw = json.dumps(payload, separators=separators, sort_keys=sort_keys).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    """The payload of `encode_cursor`; ValueError when `cursor` is not one."""
    padded = cursor + "=" * (-len(cursor) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode()))


def int_ids(offset: int) -> tuple[Callable[[int], str], Callable[[str], int | None]]:
    """(index -> id, id -> index or None) for integer ids `offset + index + 1`."""

    def parse(remote_id: str) -> int | None:
        return int(remote_id) - offset - 1 if str(remote_id).isdigit() else None
    return (lambda index: str(offset + index + 1)), parse


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(user, password) of an HTTP Basic header; None without one; ValueError when it is malformed."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    return user, password


async def read_form(request: Request, json_bodies: bool = False) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (or, with `json_bodies`, a JSON object body)."""
    raw = await request.body()
    if json_bodies and request.headers.get("content-type", "").startswith("application/json"):
        return {k: str(v) for k, v in json.loads(raw or b"{}").items()}
    return dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))


def hex_suffix_ids(prefix: str, exact_length: bool = False) -> tuple[Callable[[int], str],
                                                                     Callable[[str], int | None]]:
    """(index -> id, id -> index or None) for UUID-shaped ids: a fixed `prefix`, then the index in 12 hex
    digits (`exact_length`: an id with more or fewer digits is no id)."""

    def parse(remote_id: str) -> int | None:
        if not remote_id.startswith(prefix) or (exact_length and len(remote_id) != len(prefix) + 12):
            return None
        try:
            return int(remote_id[len(prefix):], 16)
        except ValueError:
            return None
    return (lambda index: f"{prefix}{index:012x}"), parse


async def read_json(request: Request) -> Any:
    """A JSON body, or None when the body is empty or not JSON (the caller answers in its provider's words)."""
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
