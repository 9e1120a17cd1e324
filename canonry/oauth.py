"""OAuth for connections whose auth kind is `oauth2` (and the refresh half of `client_credentials`).

**The token set** (the JSON stored behind the connection's `auth.secret`, a `local:` or `vault:` reference):
`{"access_token", "refresh_token", "expires_at" (epoch s), "token_type", "scopes" [granted],
"connection_id", "provider", "client_id", "token_endpoint", "issued_at", "status" ("active" |
"needs_reauth"), "reason"?, "instance_url"?}`. The client secret lives behind `auth.client_secret`.
A bare string behind the reference is accepted as a static access token (private apps).

**Connecting** (`connect`, `canonry connect <id>`): authorization code with PKCE (S256, authlib's
`OAuth2Session(code_challenge_method="S256")`) and a single-use random `state`; a callback server bound to
127.0.0.1 on the exact registered redirect URI (port and path); the token exchange; the token set saved
to the secret store. Scopes are the least the configured objects need (`least_scopes`): read scopes, plus
write scopes only for write-back objects. Every way this can go wrong raises `AuthorizationError` with a
`reason` and a hint — wrong or replayed state, callback on another path, provider refusal, expired or
reused code, PKCE mismatch, fewer scopes granted than needed.

**Refreshing** (`oauth_credential`): ahead of expiry (`REFRESH_SKEW_SECONDS`), one refresh at a time per
connection — a thread lock plus a file lock, so threads and processes share one refresh — re-reading the
store after taking the lock (someone else may have refreshed), and storing a rotated refresh token
atomically *before* the new access token is handed out. `invalid_grant` marks the token set
`needs_reauth` (and the pipeline records `ops.connection_state`): that connection's syncs stop with
`auth_expired` at once, without calling the provider again, until `canonry connect` is run; other
connections are not affected.

**Disconnecting** (`disconnect`): revoke at the provider (refresh token, then access token), then delete
the stored secret.
"""

from __future__ import annotations

import hmac
import json
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit, urlunsplit

import requests
from filelock import FileLock, Timeout

from canonry import providers
from canonry.errors import CanonryError, ErrorClass
from canonry.netsafety import guard_session
from canonry.providers import OAuthSpec, ProviderSpec
from canonry.runtime import Credential
from canonry.secrets import (
    SecretNotFound,
    delete_secret,
    register_secret,
    resolve_secret,
    store_secret,
)

REFRESH_SKEW_SECONDS = 120
REFRESH_LOCK_TIMEOUT = 120
FLOW_TTL_SECONDS = 600          # an authorization request older than this is refused locally
HTTP_TIMEOUT = 30
NON_SECRET_FIELDS = ("instance_url", "token_endpoint", "client_id", "scope", "scopes", "id", "issued_at",
                     "expires_at", "connection_id", "provider", "status", "reason", "token_type")
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class AuthorizationError(CanonryError):
    """The OAuth dance or a token operation failed; `reason` is a stable code."""

    def __init__(self, reason: str, message: str, *, connection_id: str | None = None, provider: str | None = None,
                 hint: str | None = None, status: int | None = None, endpoint: str | None = None,
                 error_class: ErrorClass = ErrorClass.AUTH_EXPIRED) -> None:
        self.reason = reason
        super().__init__(error_class, message, provider=provider, connection_id=connection_id, status=status,
                         endpoint=endpoint,
                         hint=hint or (f"start again: `canonry connect {connection_id}`" if connection_id else None))


# -- provider endpoints and scopes -------------------------------------------------------------------

@dataclass(frozen=True)
class Endpoints:
    authorize_url: str | None
    token_url: str | None
    revoke_url: str | None
    auth_method: str = "client_secret_post"


def _endpoint(connection, spec: ProviderSpec, name: str) -> str | None:
    explicit = getattr(connection.auth, f"{name}_url", None)
    if explicit:
        return explicit
    oauth = spec.oauth or OAuthSpec()
    absolute = getattr(oauth, f"{name}_url")
    path = getattr(oauth, f"{name}_path") or (urlsplit(absolute).path if absolute else None)
    if connection.base_url and path:
        # A sandbox or a regional host: the authorization server is served by the same origin.
        parts = urlsplit(connection.base_url)
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    if absolute:
        return absolute
    if path:
        return spec.base_url.rstrip("/") + path
    return None


def endpoints(connection) -> Endpoints:
    """Authorize/token/revoke URLs: `auth.*_url`, else the connection's base URL origin + the provider's
    paths (sandboxes, regional hosts), else the provider's published URLs."""
    spec = providers.spec(connection.provider)
    return Endpoints(_endpoint(connection, spec, "authorize"), _endpoint(connection, spec, "token"),
                     _endpoint(connection, spec, "revoke"),
                     spec.oauth.token_auth_method if spec.oauth else "client_secret_post")


def least_scopes(connection) -> list[str]:
    """The least scopes the connection needs: the provider's base scopes, read scopes of the synced objects
    (default: every object but the opt-in ones), write scopes of write-back objects only when write-back
    is on."""
    spec = providers.spec(connection.provider)
    wanted: list[str] = list(spec.oauth.base_scopes if spec.oauth else ())
    for name in connection.objects or spec.default_objects:
        scopes = spec.read_scopes.get(name)
        if scopes:
            wanted.extend(scopes if isinstance(scopes, tuple) else [scopes])
    if connection.write_back.enabled:
        for name in connection.write_back.objects:
            if spec.write_scopes.get(name):
                wanted.append(spec.write_scopes[name])
    return list(dict.fromkeys(wanted))


def default_params(connection) -> dict[str, str]:
    """Extra authorize/token parameters: the provider's (the Auth0 `audience` of Lever) under the
    connection's `auth.params`."""
    oauth = providers.spec(connection.provider).oauth
    params = {"audience": oauth.audience} if oauth and oauth.audience else {}
    return {**params, **dict(connection.auth.params)}


def requested_scopes(connection) -> list[str]:
    return list(connection.auth.scopes) if connection.auth.scopes is not None else least_scopes(connection)


def _session(connection, client_secret: str | None, *, verify: bool | str = True, **kwargs):
    from authlib.integrations.requests_client import OAuth2Session

    session = OAuth2Session(connection.auth.client_id, client_secret,
                            token_endpoint_auth_method=endpoints(connection).auth_method,
                            revocation_endpoint_auth_method=endpoints(connection).auth_method,
                            default_timeout=HTTP_TIMEOUT, **kwargs)
    session.verify = verify
    guard_session(session, allow_private=getattr(connection, "allow_private_network", False))
    return session


def _granted_scopes(issued: dict, requested: list[str]) -> list[str]:
    if isinstance(issued.get("scopes"), list):
        return [str(s) for s in issued["scopes"]]
    if isinstance(issued.get("scope"), str):
        return issued["scope"].replace(",", " ").split()
    return list(requested)


def _expires_at(issued: dict, provider: str | None = None) -> float | None:
    if issued.get("expires_in"):
        return time.time() + float(issued["expires_in"])
    if issued.get("expires_at"):
        value = issued["expires_at"]
        if isinstance(value, int | float):
            return float(value)
        from datetime import datetime

        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    oauth = providers.spec(provider).oauth if provider and providers.is_provider(provider) else None
    ttl = oauth.access_token_seconds if oauth else None
    return time.time() + float(ttl) if ttl else None  # None: valid until the provider says otherwise


# -- the token set -----------------------------------------------------------------------------------

def _thread_lock(connection_id: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(connection_id, threading.Lock())


def _file_lock(connection_id: str) -> FileLock:
    from canonry.warehouse import data_dir

    path = data_dir() / "secrets"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return FileLock(str(path / f"{connection_id}.refresh.lock"), timeout=REFRESH_LOCK_TIMEOUT)


class _Serialised:
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
        with _Serialised(connection_id, provider):
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
        with _Serialised(connection_id, provider):
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
    new["expires_at"] = _expires_at(issued, provider)
    new["issued_at"] = time.time()
    for key in ("instance_url", "id"):
        if issued.get(key):
            new[key] = issued[key]
    if issued.get("scope") or issued.get("scopes"):
        new["scopes"] = _granted_scopes(issued, token.get("scopes") or [])
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


# -- connecting: authorization code + PKCE + state ---------------------------------------------------

@dataclass
class ConnectResult:
    connection_id: str
    scopes: list[str]
    expires_at: float | None
    reference: str

    def __repr__(self) -> str:  # nothing secret in here, but keep it short
        return f"ConnectResult({self.connection_id!r}, scopes={self.scopes}, reference={self.reference!r})"


@dataclass
class OAuthFlow:
    """One authorization attempt for one connection: its state, PKCE verifier and authorization URL."""

    connection: object
    verify: bool | str = True
    state: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    code_verifier: str = field(default_factory=lambda: secrets.token_urlsafe(64))
    created_at: float = field(default_factory=time.monotonic)
    finished: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        auth = self.connection.auth
        if auth.kind != "oauth2":
            raise AuthorizationError("not_oauth2", f"connection {self.connection.id!r} uses {auth.kind}, not oauth2",
                                     connection_id=self.connection.id, error_class=ErrorClass.CONFIG_ERROR,
                                     hint="only oauth2 connections are connected interactively; store api keys "
                                          "with `canonry secret set`")
        self.endpoints = endpoints(self.connection)
        if not self.endpoints.authorize_url or not self.endpoints.token_url:
            raise AuthorizationError("no_endpoints", f"{self.connection.provider} declares no OAuth endpoints",
                                     connection_id=self.connection.id, error_class=ErrorClass.CONFIG_ERROR,
                                     hint="set auth.authorize_url and auth.token_url")
        self.redirect_uri = auth.redirect_uri
        self.scopes = requested_scopes(self.connection)
        client_secret = resolve_secret(auth.client_secret) if auth.client_secret else None
        self.session = _session(self.connection, client_secret, verify=self.verify, scope=" ".join(self.scopes),
                                redirect_uri=self.redirect_uri, code_challenge_method="S256")
        register_secret(self.code_verifier)  # (the state is not a credential: it is in the printed URL)
        self.url, _ = self.session.create_authorization_url(self.endpoints.authorize_url, state=self.state,
                                                            code_verifier=self.code_verifier,
                                                            **default_params(self.connection))

    def _fail(self, reason: str, message: str, hint: str | None = None, **kwargs) -> AuthorizationError:
        return AuthorizationError(reason, message, connection_id=self.connection.id,
                                  provider=self.connection.provider, hint=hint, **kwargs)

    def check_callback(self, callback_url: str) -> str:
        """Validate a redirect back to us; returns the authorization code. Consumes the state."""
        parts = urlsplit(callback_url)
        expected = urlsplit(self.redirect_uri)
        if (parts.scheme, parts.hostname, parts.port, parts.path) != (expected.scheme, expected.hostname,
                                                                      expected.port, expected.path):
            raise self._fail("redirect_mismatch", f"the callback arrived at {parts.scheme}://{parts.netloc}"
                             f"{parts.path}, not the registered redirect URI {self.redirect_uri}",
                             "register exactly auth.redirect_uri with the provider")
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        presented = query.get("state", "")
        with self.lock:
            if self.finished:
                raise self._fail("state_replayed", "this authorization response was already used (replayed "
                                 "state); the state is single-use")
            if not presented or not hmac.compare_digest(presented.encode(), self.state.encode()):
                raise self._fail("state_mismatch", "the state in the callback does not match this authorization "
                                 "request (possible CSRF or a stale browser tab)")
            if time.monotonic() - self.created_at > FLOW_TTL_SECONDS:
                self.finished = True
                raise self._fail("request_expired", "the authorization request is older than "
                                 f"{FLOW_TTL_SECONDS // 60} minutes")
            self.finished = True  # single-use: from here on, this state is spent
        if query.get("error"):
            raise self._fail("provider_denied", f"the provider refused the authorization: {query['error']}"
                             f"{': ' + query['error_description'] if query.get('error_description') else ''}")
        if not query.get("code"):
            raise self._fail("no_code", "the callback carries no authorization code")
        register_secret(query["code"])
        return query["code"]

    def exchange(self, code: str) -> dict:
        """Trade the code (with our PKCE verifier) for tokens at the token endpoint."""
        from authlib.integrations.requests_client import OAuthError

        params = {k: v for k, v in default_params(self.connection).items() if k in ("audience",)}
        try:
            issued = dict(self.session.fetch_token(self.endpoints.token_url, grant_type="authorization_code",
                                                   code=code, code_verifier=self.code_verifier,
                                                   redirect_uri=self.redirect_uri, **params))
        except OAuthError as exc:
            description = exc.description or ""
            reason = _code_error_reason(exc.error, description)
            raise self._fail(reason, f"the token endpoint rejected the authorization code ({exc.error}: "
                             f"{description})", endpoint=self.endpoints.token_url) from None
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            raise self._fail("token_endpoint_error", f"the token endpoint answered HTTP {status}",
                             endpoint=self.endpoints.token_url, status=status,
                             error_class=ErrorClass.TRANSIENT) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise self._fail("token_endpoint_unreachable", f"the token endpoint is unreachable "
                             f"({type(exc).__name__})", endpoint=self.endpoints.token_url,
                             error_class=ErrorClass.TRANSIENT) from None
        if not issued.get("access_token"):
            raise self._fail("no_access_token", "the token endpoint answered without an access_token",
                             error_class=ErrorClass.PROVIDER_CONTRACT)
        register_secret(issued["access_token"])
        register_secret(issued.get("refresh_token"))
        return issued

    def complete(self, callback_url: str) -> ConnectResult:
        """check_callback + exchange + store: the whole second half of the dance."""
        issued = self.exchange(self.check_callback(callback_url))
        return store_token_set(self.connection, issued, self.scopes, self.endpoints, verify=self.verify)


def _code_error_reason(error: str, description: str) -> str:
    text = description.lower()
    if "verifier" in text or "pkce" in text or "challenge" in text:
        return "pkce_mismatch"
    if "redirect" in text:
        return "redirect_mismatch"
    if "already" in text or "used" in text:
        return "code_reused"
    if "expired" in text:
        return "code_expired"
    if error == "invalid_client":
        return "invalid_client"
    return "code_rejected"


def store_token_set(connection, issued: dict, requested: list[str], eps: Endpoints | None = None,
                    *, verify: bool | str = True) -> ConnectResult:
    """Check the grant covers what we need, then save the token set behind `auth.secret`."""
    eps = eps or endpoints(connection)
    granted = _granted_scopes(issued, requested)
    missing = [s for s in least_scopes(connection) if s not in granted]
    if missing:
        raise AuthorizationError("scope_not_granted", f"the provider granted fewer scopes than the connection "
                                 f"needs (missing: {', '.join(missing)})", connection_id=connection.id,
                                 provider=connection.provider, error_class=ErrorClass.PERMISSION_DENIED,
                                 hint="approve every requested scope, or sync fewer objects")
    token = {
        "access_token": issued["access_token"], "refresh_token": issued.get("refresh_token"),
        "expires_at": _expires_at(issued, connection.provider), "token_type": issued.get("token_type", "Bearer"),
        "scopes": granted, "connection_id": connection.id, "provider": connection.provider,
        "client_id": connection.auth.client_id, "token_endpoint": eps.token_url, "auth_method": eps.auth_method,
        "issued_at": time.time(), "status": "active",
    }
    if default_params(connection).get("audience"):
        token["params"] = {"audience": default_params(connection)["audience"]}
    if verify is not True:
        token["verify"] = verify
    for key in ("instance_url", "id"):
        if issued.get(key):
            token[key] = issued[key]
    with _Serialised(connection.id, connection.provider):
        store_secret(connection.auth.secret, json.dumps(token))
    _set_state(connection.id, "active", "connected")
    return ConnectResult(connection.id, granted, token["expires_at"], connection.auth.secret)


def _set_state(connection_id: str, state: str, reason: str) -> None:
    """Best effort: the warehouse may be busy (one writer per DuckDB file); the token set is the truth."""
    try:
        from canonry import ops

        ops.set_connection_state(connection_id, state, reason)
    except Exception:  # noqa: BLE001 — recording state must never fail a connect/disconnect
        pass


class _CallbackServer:
    """An HTTP server on 127.0.0.1 at the redirect URI's port, answering only its exact path."""

    def __init__(self, flow: OAuthFlow) -> None:
        self.flow = flow
        self.results: queue.Queue = queue.Queue()
        redirect = urlsplit(flow.redirect_uri)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                url = f"http://{redirect.hostname}:{redirect.port}{self.path}"
                if urlsplit(self.path).path != redirect.path:
                    self._answer(404, "Not the registered redirect path.")
                    return
                try:
                    result = outer.flow.complete(url)
                except AuthorizationError as exc:
                    self._answer(400, f"Canonry could not connect: {exc.detail}")
                    if exc.reason not in ("state_mismatch",):
                        outer.results.put(exc)  # a wrong state is ignored: the real callback may still come
                    return
                except Exception as exc:  # noqa: BLE001
                    self._answer(500, "Canonry could not connect: internal error.")
                    outer.results.put(exc)
                    return
                self._answer(200, "Connected. You can close this window.")
                outer.results.put(result)

            def _answer(self, status: int, text: str) -> None:
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # the query string carries the code: never log it
                pass

        try:
            self.server = HTTPServer(("127.0.0.1", redirect.port), Handler)
        except OSError as exc:
            raise AuthorizationError("port_in_use", f"cannot listen on 127.0.0.1:{redirect.port} for the OAuth "
                                     f"callback ({exc.strerror})", connection_id=flow.connection.id,
                                     error_class=ErrorClass.CONFIG_ERROR,
                                     hint="stop what uses that port, or register another redirect URI") from None
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="canonry-oauth-callback", daemon=True)

    def __enter__(self) -> _CallbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def default_browser(url: str) -> None:
    import sys
    import webbrowser

    print(f"Open this URL to authorise the connection:\n  {url}", file=sys.stderr, flush=True)
    try:
        webbrowser.open(url)
    except Exception:  # noqa: BLE001 — no browser: the printed URL is enough
        pass


def connect(connection, *, browser: Callable[[str], None] | None = None, timeout: float = 300,
            verify: bool | str | None = None) -> ConnectResult:
    """The whole dance: callback server, browser step, state check, code exchange, token set stored."""
    verify = verify if verify is not None else (connection.tls_ca or True)
    flow = OAuthFlow(connection, verify=verify)
    with _CallbackServer(flow) as server:
        try:
            (browser or default_browser)(flow.url)
        except Exception as exc:  # noqa: BLE001 — the scripted/real browser could not reach the provider
            raise AuthorizationError("browser_failed", f"the authorization step failed: {exc}",
                                     connection_id=connection.id, provider=connection.provider) from None
        try:
            result = server.results.get(timeout=timeout)
        except queue.Empty:
            raise AuthorizationError("timeout", f"no authorization arrived at {flow.redirect_uri} within "
                                     f"{timeout:.0f}s", connection_id=connection.id,
                                     provider=connection.provider) from None
    if isinstance(result, BaseException):
        raise result
    return result


# -- disconnecting -------------------------------------------------------------------------------------

@dataclass
class DisconnectResult:
    connection_id: str
    revoked: list[str]
    deleted: bool


def _already_invalid(response: requests.Response) -> bool:
    """RFC 7009 answers 200 for a token that is already invalid; Salesforce answers 400 `invalid_token`
    instead — e.g. for an access token that went down with its refresh token. Nothing is left to revoke."""
    if response.status_code != 400:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("error") == "invalid_token"


def disconnect(connection, *, force: bool = False) -> DisconnectResult:
    """Revoke the stored tokens at the provider, then delete them (and mark the connection disconnected).

    If revocation fails the secrets are kept (so it can be retried) unless `force`."""
    revoked: list[str] = []
    try:
        token = load_token_set(connection.auth.secret, connection.id, connection.provider)
    except SecretNotFound:
        token = None
    if token and connection.auth.kind == "oauth2" and (token.get("refresh_token") or token.get("access_token")):
        eps = endpoints(connection)
        if eps.revoke_url:
            client_secret = resolve_secret(connection.auth.client_secret) if connection.auth.client_secret else None
            session = _session(connection, client_secret, verify=token.get("verify", connection.tls_ca or True))
            for hint in ("refresh_token", "access_token"):
                value = token.get(hint)
                if not value:
                    continue
                try:
                    response = session.revoke_token(eps.revoke_url, token=value, token_type_hint=hint)
                    ok = response.status_code < 400 or _already_invalid(response)
                except requests.RequestException:
                    ok = False
                if ok:
                    revoked.append(hint)
                elif not force:
                    raise AuthorizationError("revoke_failed", f"the provider did not confirm revoking the {hint}; "
                                             "the stored tokens are kept", connection_id=connection.id,
                                             provider=connection.provider, endpoint=eps.revoke_url,
                                             error_class=ErrorClass.TRANSIENT,
                                             hint="retry, or `canonry disconnect --force` and revoke the app's "
                                                  "access in the provider's settings")
    deleted = False
    try:
        deleted = delete_secret(connection.auth.secret)
    except SecretNotFound:
        deleted = False  # env: — the operator's to unset
    _set_state(connection.id, "disconnected", f"revoked {', '.join(revoked) or 'nothing'}")
    return DisconnectResult(connection.id, revoked, deleted)
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
