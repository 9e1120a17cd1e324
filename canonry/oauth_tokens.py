"""OAuth token sets: loading, refreshing, and client-credentials tokens (connecting is `canonry.oauth`).

**The token set** (the JSON stored behind the connection's `auth.secret`, a `local:` or `vault:` reference):
`{"access_token", "refresh_token", "expires_at" (epoch s), "token_type", "scopes" [granted],
"connection_id", "provider", "client_id", "token_endpoint", "issued_at", "status" ("active" |
"needs_reauth"), "reason"?, "instance_url"?}`. The client secret lives behind `auth.client_secret`.
A bare string behind the reference is accepted as a static access token (private apps).

**Refreshing** (`oauth_credential`): ahead of expiry (`REFRESH_SKEW_SECONDS`), one refresh at a time per
connection — a thread lock plus a file lock, so threads and processes share one refresh — re-reading the
store after taking the lock (someone else may have refreshed), and storing a rotated refresh token
atomically *before* the new access token is handed out. `invalid_grant` marks the token set
`needs_reauth` (and the pipeline records `ops.connection_state`): that connection's syncs stop with
`auth_expired` at once, without calling the provider again, until `canonry connect` is run; other
connections are not affected.
"""

from __future__ import annotations

import json
import threading
import time

import requests
from filelock import FileLock, Timeout

from canonry.errors import CanonryError, ErrorClass
from canonry.netsafety import guard_session
from canonry.oauth_endpoints import (
    HTTP_TIMEOUT,
    AuthorizationError,
    granted_scopes,
    token_expiry,
)
from canonry.runtime import Credential
from canonry.secrets import (
    SecretNotFound,
    register_secret,
    resolve_secret,
    store_secret,
)

REFRESH_SKEW_SECONDS = 120
REFRESH_LOCK_TIMEOUT = 120
NON_SECRET_FIELDS = ("instance_url", "token_endpoint", "client_id", "scope", "scopes", "id", "issued_at",
                     "expires_at", "connection_id", "provider", "status", "reason", "token_type")
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


# -- the token set -----------------------------------------------------------------------------------

def _thread_lock(connection_id: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(connection_id, threading.Lock())


def _file_lock(connection_id: str) -> FileLock:
    from canonry.warehouse import data_dir

    path = data_dir() / "secrets"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return FileLock(str(path / f"{connection_id}.refresh.lock"), timeout=REFRESH_LOCK_TIMEOUT)


class Serialised:
    """The per-connection critical section: a thread lock, then the cross-process file lock."""

    def __init__(self, connection_id: str, provider: str) -> None:
        self.connection_id, self.provider = connection_id, provider
        self.thread_lock, self.file_lock = _thread_lock(connection_id), _file_lock(connection_id)

    def __enter__(self):
        self.thread_lock.acquire()
        try:
            self.file_lock.acquire()
        except Timeout:
            self.thread_lock.release()
            raise CanonryError(ErrorClass.TRANSIENT, "another process holds the token refresh lock for too long",
                               provider=self.provider, connection_id=self.connection_id) from None
        return self

    def __exit__(self, *exc) -> None:
        self.file_lock.release()
        self.thread_lock.release()


def load_token_set(reference: str, connection_id: str | None = None, provider: str | None = None) -> dict:
    """The stored token set (a bare token becomes `{"access_token": …}`); checks it belongs to the connection."""
    raw = resolve_secret(reference)
    try:
        token = json.loads(raw)
    except ValueError:
        token = None
    if not isinstance(token, dict):
        return {"access_token": raw}
    for key in ("access_token", "refresh_token"):
        register_secret(token.get(key))
    owner = token.get("connection_id")
    if connection_id and owner and owner != connection_id:
        raise AuthorizationError("wrong_connection",
                                 f"the token set behind {reference} was issued to connection {owner!r}, "
                                 f"not {connection_id!r}", connection_id=connection_id, provider=provider,
                                 error_class=ErrorClass.CONFIG_ERROR,
                                 hint=f"give {connection_id} its own secret reference and run "
                                      f"`canonry connect {connection_id}`")
    return token


_load = load_token_set  # the name the pipeline's first version used


def _expiring(token: dict) -> bool:
    expires_at = token.get("expires_at")
    return expires_at is not None and time.time() > float(expires_at) - REFRESH_SKEW_SECONDS


def _needs_reauth_error(token: dict, connection_id: str, provider: str) -> AuthorizationError:
    return AuthorizationError("needs_reauth", f"the connection needs re-authorisation "
                              f"({token.get('reason') or 'the refresh token was rejected'})",
                              connection_id=connection_id, provider=provider,
                              hint=f"re-authorise it: `canonry connect {connection_id}`")


def oauth_credential(connection_id: str, provider: str, reference: str, client_secret_ref: str | None,
                     *, client_id: str | None = None, verify: bool | str = True,
                     params: dict | None = None, allow_private_network: bool = False) -> Credential:
    """A credential whose value is a fresh access token, refreshed within the skew of expiry."""

    def current() -> str:
        token = load_token_set(reference, connection_id, provider)
        if token.get("status") == "needs_reauth":
            raise _needs_reauth_error(token, connection_id, provider)
        if not _expiring(token):
            return token["access_token"]
        with Serialised(connection_id, provider):
            token = load_token_set(reference, connection_id, provider)  # another thread/process may have refreshed
            if token.get("status") == "needs_reauth":
                raise _needs_reauth_error(token, connection_id, provider)
            if not _expiring(token):
                return token["access_token"]
            return _refresh(connection_id, provider, reference, token, client_secret_ref,
                            client_id=client_id, verify=verify, params=params,
                            allow_private_network=allow_private_network)["access_token"]

    def refresh_now() -> str:
        """Refresh regardless of the stored expiry, unless another thread or process already did since
        the caller read its token (a provider that returns no expiry says so only with a 401)."""
        stale = load_token_set(reference, connection_id, provider).get("access_token")
        with Serialised(connection_id, provider):
            token = load_token_set(reference, connection_id, provider)
            if token.get("status") == "needs_reauth":
                raise _needs_reauth_error(token, connection_id, provider)
            if token.get("access_token") != stale:
                return token["access_token"]
            return _refresh(connection_id, provider, reference, token, client_secret_ref,
                            client_id=client_id, verify=verify, params=params,
                            allow_private_network=allow_private_network)["access_token"]

    def metadata() -> dict:
        token = load_token_set(reference, connection_id, provider)
        return {k: v for k, v in token.items() if k in NON_SECRET_FIELDS}

    return Credential("oauth2", reference, current, metadata=metadata, refresh=refresh_now)


def _refresh(connection_id: str, provider: str, reference: str, token: dict, client_secret_ref: str | None,
             *, client_id: str | None = None, verify: bool | str = True, params: dict | None = None,
             allow_private_network: bool = False) -> dict:
    """One refresh (the caller holds the per-connection lock); the new set is stored before it is returned."""
    from authlib.integrations.requests_client import OAuth2Session, OAuthError

    endpoint, refresh_token = token.get("token_endpoint"), token.get("refresh_token")
    if not endpoint or not refresh_token:
        raise AuthorizationError("no_refresh_token", "the access token expired and no refresh token is stored",
                                 connection_id=connection_id, provider=provider)
    client_secret = resolve_secret(client_secret_ref) if client_secret_ref else token.get("client_secret")
    session = OAuth2Session(client_id or token.get("client_id"), client_secret,
                            token_endpoint_auth_method=token.get("auth_method", "client_secret_post"),
                            default_timeout=HTTP_TIMEOUT)
    session.verify = verify if verify is not True else token.get("verify", True)
    guard_session(session, allow_private=allow_private_network)
    extra = {k: v for k, v in {**(token.get("params") or {}), **(params or {})}.items() if k in ("audience",)}
    try:
        issued = dict(session.refresh_token(endpoint, refresh_token=refresh_token, **extra))
    except OAuthError as exc:
        if exc.error == "invalid_grant":
            dead = {**token, "status": "needs_reauth",
                    "reason": f"refresh rejected with invalid_grant at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"}
            dead["access_token"] = ""  # never hand out a token of a dead grant
            store_secret(reference, json.dumps(dead))
            raise AuthorizationError("invalid_grant", "token refresh failed (invalid_grant: the refresh token "
                                     "is invalid, expired or revoked)", connection_id=connection_id,
                                     provider=provider, endpoint=endpoint, status=400,
                                     hint=f"re-authorise it: `canonry connect {connection_id}`") from None
        error_class = ErrorClass.CONFIG_ERROR if exc.error == "invalid_client" else ErrorClass.AUTH_EXPIRED
        raise AuthorizationError(exc.error or "refresh_failed", f"token refresh failed ({exc.error}: "
                                 f"{exc.description or ''})", connection_id=connection_id, provider=provider,
                                 endpoint=endpoint, error_class=error_class) from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        raise CanonryError(ErrorClass.TRANSIENT if (status or 500) >= 500 or status == 429
                           else ErrorClass.AUTH_EXPIRED, f"token refresh failed (HTTP {status})",
                           provider=provider, connection_id=connection_id, endpoint=endpoint,
                           status=status) from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise CanonryError(ErrorClass.TRANSIENT, f"token endpoint unreachable ({type(exc).__name__})",
                           provider=provider, connection_id=connection_id, endpoint=endpoint) from None
    if not issued.get("access_token"):
        raise CanonryError(ErrorClass.PROVIDER_CONTRACT, "the token endpoint answered without an access_token",
                           provider=provider, connection_id=connection_id, endpoint=endpoint)
    register_secret(issued["access_token"])
    register_secret(issued.get("refresh_token"))
    new = dict(token)
    new["access_token"] = issued["access_token"]
    if issued.get("refresh_token"):
        new["refresh_token"] = issued["refresh_token"]  # rotated: the old one is dead from now on
    new["expires_at"] = token_expiry(issued, provider)
    new["issued_at"] = time.time()
    for key in ("instance_url", "id"):
        if issued.get(key):
            new[key] = issued[key]
    if issued.get("scope") or issued.get("scopes"):
        new["scopes"] = granted_scopes(issued, token.get("scopes") or [])
    new["status"] = "active"
    new.pop("reason", None)
    store_secret(reference, json.dumps(new))  # stored before anyone uses the new access token
    return new


def token_status(connection) -> dict:
    """Non-secret facts about a connection's stored token set (for `canonry status` / tests)."""
    try:
        token = load_token_set(connection.auth.secret, connection.id, connection.provider)
    except SecretNotFound:
        return {"stored": False}
    return {"stored": True, **{k: v for k, v in token.items() if k in NON_SECRET_FIELDS}}



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
                                  extra_form: tuple[str, ...] = ("sub", "scope", "audience"),
                                  allow_private_network: bool = False) -> ClientCredentialsCredential:
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
            token, expires_at = _mint(connection_id, provider, stored, verify, extra_form, allow_private_network)
            _CC_TOKENS[key(stored)] = (token, expires_at)
            return token

    def invalidate() -> None:
        with _thread_lock(connection_id):
            for k in [k for k in _CC_TOKENS if k[0] == connection_id]:
                del _CC_TOKENS[k]

    return ClientCredentialsCredential(reference, current, invalidate)


def _mint(connection_id: str, provider: str, stored: dict, verify: bool | str,
          extra_form: tuple[str, ...], allow_private_network: bool = False) -> tuple[str, float]:
    endpoint = stored["token_endpoint"]
    form = {"grant_type": "client_credentials"}
    for name in extra_form:
        if stored.get(name) not in (None, ""):
            form[name] = str(stored[name])
    try:
        with requests.Session() as http:
            guard_session(http, allow_private=allow_private_network)
            response = http.post(endpoint, data=form, auth=(stored["client_id"], stored["client_secret"]),
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

