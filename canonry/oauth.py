"""OAuth credentials for connections whose auth kind is `oauth2` or `client_credentials`.

The stored secret (behind the connection's reference) is a JSON token set:
`{"access_token", "refresh_token", "expires_at", "token_endpoint", "client_id"}`; the client secret
lives behind `auth.client_secret`. Refresh happens ahead of expiry, one refresh at a time per
connection (a thread lock plus a file lock across processes), and a rotated refresh token is stored
atomically before anyone uses the new access token.
"""

from __future__ import annotations

import json
import threading
import time

import requests
from filelock import FileLock

from canonry.errors import CanonryError, ErrorClass
from canonry.runtime import Credential
from canonry.secrets import register_secret, resolve_secret, store_secret

REFRESH_SKEW_SECONDS = 120
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _thread_lock(connection_id: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(connection_id, threading.Lock())


def _file_lock(connection_id: str) -> FileLock:
    from canonry.warehouse import data_dir

    path = data_dir() / "secrets"
    path.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path / f"{connection_id}.refresh.lock"))


def oauth_credential(connection_id: str, provider: str, reference: str, client_secret_ref: str | None) -> Credential:
    """A credential whose value is a fresh access token, refreshed when within the skew of expiry."""

    def current() -> str:
        token = _load(reference)
        if not _expiring(token):
            return token["access_token"]
        with _thread_lock(connection_id), _file_lock(connection_id):
            token = _load(reference)  # another thread or process may have refreshed meanwhile
            if not _expiring(token):
                return token["access_token"]
            token = _refresh(connection_id, provider, reference, token, client_secret_ref)
            return token["access_token"]

    return Credential("oauth2", reference, current)


def _load(reference: str) -> dict:
    raw = resolve_secret(reference)
    try:
        token = json.loads(raw)
    except ValueError:
        return {"access_token": raw}  # a bare access token (e.g. a private-app token)
    for key in ("access_token", "refresh_token"):
        register_secret(token.get(key))
    return token


def _expiring(token: dict) -> bool:
    expires_at = token.get("expires_at")
    return expires_at is not None and time.time() > float(expires_at) - REFRESH_SKEW_SECONDS


def _refresh(connection_id: str, provider: str, reference: str, token: dict, client_secret_ref: str | None) -> dict:
    endpoint, refresh_token = token.get("token_endpoint"), token.get("refresh_token")
    if not endpoint or not refresh_token:
        raise CanonryError(ErrorClass.AUTH_EXPIRED, "the access token expired and no refresh token is stored",
                           provider=provider, connection_id=connection_id)
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": token.get("client_id", "")}
    if client_secret_ref:
        form["client_secret"] = resolve_secret(client_secret_ref)
    if token.get("audience"):
        form["audience"] = token["audience"]
    response = requests.post(endpoint, data=form, timeout=30, verify=token.get("verify", True))
    if response.status_code != 200:
        try:
            error = response.json().get("error", "")
        except ValueError:
            error = ""
        raise CanonryError(ErrorClass.AUTH_EXPIRED if error == "invalid_grant" or response.status_code in (400, 401)
                           else ErrorClass.TRANSIENT,
                           f"token refresh failed ({error or response.status_code})", provider=provider,
                           connection_id=connection_id, endpoint=endpoint, status=response.status_code)
    issued = response.json()
    new = dict(token)
    new["access_token"] = issued["access_token"]
    if issued.get("refresh_token"):
        new["refresh_token"] = issued["refresh_token"]
    if issued.get("expires_in"):
        new["expires_at"] = time.time() + float(issued["expires_in"])
    if issued.get("instance_url"):
        new["instance_url"] = issued["instance_url"]
    register_secret(new["access_token"])
    register_secret(new.get("refresh_token"))
    store_secret(reference, json.dumps(new))
    return new


# -- client credentials (e.g. Greenhouse Harvest v3 custom integrations) ---------------------------------
class ClientCredentialsCredential(Credential):
    """A credential whose value is an access token minted with the client-credentials grant.

    The token is cached in memory (never stored: it is re-minted cheaply), shared by every session of the
    connection in this process, fetched one at a time per connection, and re-minted ahead of expiry or
    after `invalidate()` (a 401 on a revoked token).
    """

    __slots__ = ("_invalidate",)

    def __init__(self, reference: str, getter, invalidate) -> None:
        super().__init__("client_credentials", reference, getter)
        self._invalidate = invalidate

    def invalidate(self) -> None:
        self._invalidate()


_CC_TOKENS: dict[tuple[str, str, str], tuple[str, float]] = {}


def client_credentials_credential(connection_id: str, provider: str, reference: str, *,
                                  client_id: str | None = None, client_secret_ref: str | None = None,
                                  token_endpoint: str | None = None, verify: bool | str = True,
                                  extra_form: tuple[str, ...] = ("sub", "scope", "audience")) -> ClientCredentialsCredential:
    """Client-credentials token fetch + cache.

    The secret behind `reference` is either JSON `{"client_id", "client_secret", "token_endpoint"?, "sub"?,
    "scope"?}` or the bare client secret; `client_id` / `client_secret_ref` (the connection's
    `auth.client_id` / `auth.client_secret`) fill what the JSON lacks. The client authenticates with HTTP
    Basic (RFC 6749 §2.3.1); the answer's `expires_in` or `expires_at` (RFC 3339) sets the expiry.
    """

    def settings() -> dict:
        raw = resolve_secret(reference)
        try:
            stored = json.loads(raw)
        except ValueError:
            stored = None
        stored = stored if isinstance(stored, dict) else {"client_secret": raw}
        if client_secret_ref:
            stored["client_secret"] = resolve_secret(client_secret_ref)
        stored.setdefault("client_id", client_id)
        stored.setdefault("token_endpoint", token_endpoint)
        register_secret(stored.get("client_secret"))
        missing = [k for k in ("client_id", "client_secret", "token_endpoint") if not stored.get(k)]
        if missing:
            raise CanonryError(ErrorClass.CONFIG_ERROR, f"client credentials lack {', '.join(missing)}",
                               provider=provider, connection_id=connection_id,
                               hint="store JSON {client_id, client_secret} behind auth.secret, or set "
                                    "auth.client_id and auth.client_secret")
        return stored

    def key(stored: dict) -> tuple[str, str, str]:
        return connection_id, stored["token_endpoint"], stored["client_id"]

    def current() -> str:
        stored = settings()
        cached = _CC_TOKENS.get(key(stored))
        if cached and time.time() < cached[1] - REFRESH_SKEW_SECONDS:
            return cached[0]
        with _thread_lock(connection_id):
            cached = _CC_TOKENS.get(key(stored))
            if cached and time.time() < cached[1] - REFRESH_SKEW_SECONDS:
                return cached[0]
            token, expires_at = _mint(connection_id, provider, stored, verify, extra_form)
            _CC_TOKENS[key(stored)] = (token, expires_at)
            return token

    def invalidate() -> None:
        with _thread_lock(connection_id):
            for k in [k for k in _CC_TOKENS if k[0] == connection_id]:
                del _CC_TOKENS[k]

    return ClientCredentialsCredential(reference, current, invalidate)


def _mint(connection_id: str, provider: str, stored: dict, verify: bool | str,
          extra_form: tuple[str, ...]) -> tuple[str, float]:
    endpoint = stored["token_endpoint"]
    form = {"grant_type": "client_credentials"}
    for name in extra_form:
        if stored.get(name) not in (None, ""):
            form[name] = str(stored[name])
    try:
        response = requests.post(endpoint, data=form, auth=(stored["client_id"], stored["client_secret"]),
                                 timeout=30, verify=verify)
    except requests.RequestException as exc:
        raise CanonryError(ErrorClass.TRANSIENT, f"token endpoint unreachable: {type(exc).__name__}",
                           provider=provider, connection_id=connection_id, endpoint=endpoint) from None
    if response.status_code != 200:
        try:
            body = response.json()
            error = body.get("error") or body.get("message") or ""
            detail = body.get("error_description") or ""
        except ValueError:
            error, detail = "", ""
        error_class = (ErrorClass.TRANSIENT if response.status_code >= 500 or response.status_code == 429
                       else ErrorClass.AUTH_EXPIRED)
        raise CanonryError(error_class, f"client-credentials token request failed ({error or response.status_code}"
                           f"{': ' + detail if detail else ''})", provider=provider, connection_id=connection_id,
                           endpoint=endpoint, status=response.status_code)
    issued = response.json()
    token = issued.get("access_token")
    if not token:
        raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "token response has no access_token", provider=provider,
                           connection_id=connection_id, endpoint=endpoint)
    register_secret(token)
    if issued.get("expires_in"):
        expires_at = time.time() + float(issued["expires_in"])
    elif issued.get("expires_at"):
        from datetime import datetime

        expires_at = datetime.fromisoformat(str(issued["expires_at"]).replace("Z", "+00:00")).timestamp()
    else:
        expires_at = time.time() + 3600
    return token, expires_at
