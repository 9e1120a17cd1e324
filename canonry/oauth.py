"""OAuth for connections whose auth kind is `oauth2` (and the refresh half of `client_credentials`).

**Connecting** (`connect`, `canonry connect <id>`): authorization code with PKCE (S256, authlib's
`OAuth2Session(code_challenge_method="S256")`) and a single-use random `state`; a callback server bound to
127.0.0.1 on the exact registered redirect URI (port and path); the token exchange; the token set saved
to the secret store. Scopes are the least the configured objects need (`least_scopes`): read scopes, plus
write scopes only for write-back objects. Every way this can go wrong raises `AuthorizationError` with a
`reason` and a hint — wrong or replayed state, callback on another path, provider refusal, expired or
reused code, PKCE mismatch, fewer scopes granted than needed.

**Disconnecting** (`disconnect`): revoke at the provider (refresh token, then access token), then delete
the stored secret.

The provider side (endpoints, least scopes, `AuthorizationError`) is `canonry.oauth_endpoints`; the stored
token set, its refresh and client-credentials tokens are `canonry.oauth_tokens`.
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
from urllib.parse import parse_qs, urlsplit

import requests

from canonry.errors import ErrorClass
from canonry.oauth_endpoints import (
    AuthorizationError,
    Endpoints,
    authorization_session,
    default_params,
    endpoints,
    granted_scopes,
    least_scopes,
    requested_scopes,
    token_expiry,
)
from canonry.oauth_tokens import Serialised, load_token_set
from canonry.secrets import (
    SecretNotFound,
    delete_secret,
    register_secret,
    resolve_secret,
    store_secret,
)

FLOW_TTL_SECONDS = 600          # an authorization request older than this is refused locally


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
        self.session = authorization_session(self.connection, client_secret, verify=self.verify, scope=" ".join(self.scopes),
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
    granted = granted_scopes(issued, requested)
    missing = [s for s in least_scopes(connection) if s not in granted]
    if missing:
        raise AuthorizationError("scope_not_granted", f"the provider granted fewer scopes than the connection "
                                 f"needs (missing: {', '.join(missing)})", connection_id=connection.id,
                                 provider=connection.provider, error_class=ErrorClass.PERMISSION_DENIED,
                                 hint="approve every requested scope, or sync fewer objects")
    token = {
        "access_token": issued["access_token"], "refresh_token": issued.get("refresh_token"),
        "expires_at": token_expiry(issued, connection.provider), "token_type": issued.get("token_type", "Bearer"),
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
    with Serialised(connection.id, connection.provider):
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
            session = authorization_session(connection, client_secret, verify=token.get("verify", connection.tls_ca or True))
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
