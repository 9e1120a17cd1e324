"""The authorization-server half every OAuth provider sandbox shares.

Providers differ in URLs, token response fields and error bodies; the mechanics are the same:
registered clients with exact redirect URIs, single-use authorization codes with PKCE (S256) and a
short life, access tokens with a lifetime, refresh tokens (rotating or not), client credentials,
revocation. A provider module wraps these in its own routes and response shapes.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field

from canonry.sandbox.engine import SandboxState


class OAuthError(Exception):
    """An RFC 6749 error: `error` code, human description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...] = ()


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str | None
    expires_at: float
    used: bool = False


@dataclass
class IssuedToken:
    access_token: str
    refresh_token: str | None
    expires_in: int
    scopes: tuple[str, ...]
    client_id: str


@dataclass
class OAuthServer:
    state: SandboxState
    access_ttl: int = 1800
    code_ttl: int = 60
    rotate_refresh_tokens: bool = False
    token_prefix: str = "sbx"
    clients: dict[str, OAuthClient] = field(default_factory=dict)
    codes: dict[str, _Code] = field(default_factory=dict)
    refresh_tokens: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    access_expiry: dict[str, float] = field(default_factory=dict)
    token_calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, client: OAuthClient) -> None:
        self.clients[client.client_id] = client

    def authorize(self, client_id: str, redirect_uri: str, scope: str, challenge: str | None,
                  method: str | None) -> str:
        """Issue a code for an (auto-approved) consent; raises OAuthError on a bad request."""
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError("invalid_client", f"unknown client_id {client_id!r}")
        if redirect_uri not in client.redirect_uris:
            raise OAuthError("invalid_request", "redirect_uri does not match a registered redirect URI")
        if challenge and (method or "plain") != "S256":
            raise OAuthError("invalid_request", "only code_challenge_method=S256 is accepted")
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = _Code(client_id, redirect_uri, tuple(scope.split()), challenge,
                                     time.monotonic() + self.code_ttl)
        return code

    def _client(self, client_id: str | None, client_secret: str | None) -> OAuthClient:
        client = self.clients.get(client_id or "")
        if client is None or not secrets.compare_digest(client.client_secret, client_secret or ""):
            raise OAuthError("invalid_client", "client authentication failed", 401)
        return client

    def exchange_code(self, form: dict[str, str], basic: tuple[str, str] | None = None) -> IssuedToken:
        client_id, client_secret = basic or (form.get("client_id"), form.get("client_secret"))
        client = self._client(client_id, client_secret)
        with self.lock:
            self.token_calls += 1
            code = self.codes.get(form.get("code", ""))
            if code is None or code.client_id != client.client_id:
                raise OAuthError("invalid_grant", "authorization code is invalid")
            if code.used:
                raise OAuthError("invalid_grant", "authorization code was already used")
            if time.monotonic() > code.expires_at:
                raise OAuthError("invalid_grant", "authorization code expired")
            if form.get("redirect_uri") != code.redirect_uri:
                raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
            if code.challenge is not None:
                verifier = form.get("code_verifier", "")
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
                if not verifier or digest.decode() != code.challenge:
                    raise OAuthError("invalid_grant", "PKCE code_verifier does not match the code_challenge")
            code.used = True
            return self._issue(client.client_id, code.scopes, with_refresh=True)

    def refresh(self, form: dict[str, str], basic: tuple[str, str] | None = None) -> IssuedToken:
        client_id, client_secret = basic or (form.get("client_id"), form.get("client_secret"))
        client = self._client(client_id, client_secret)
        with self.lock:
            self.token_calls += 1
            presented = form.get("refresh_token", "")
            owner = self.refresh_tokens.get(presented)
            if owner is None or owner[0] != client.client_id:
                raise OAuthError("invalid_grant", "refresh token is invalid, expired or revoked")
            if self.rotate_refresh_tokens:
                del self.refresh_tokens[presented]
                return self._issue(client.client_id, owner[1], with_refresh=True)
            issued = self._issue(client.client_id, owner[1], with_refresh=False)
            issued.refresh_token = presented
            return issued

    def client_credentials(self, client_id: str, client_secret: str, scopes: tuple[str, ...]) -> IssuedToken:
        client = self._client(client_id, client_secret)
        with self.lock:
            self.token_calls += 1
            return self._issue(client.client_id, scopes or client.scopes, with_refresh=False)

    def revoke(self, token: str) -> bool:
        with self.lock:
            known = token in self.refresh_tokens or token in self.access_expiry
            self.refresh_tokens.pop(token, None)
            self.access_expiry.pop(token, None)
            self.state.tokens.discard(token)
            return known

    def _issue(self, client_id: str, scopes: tuple[str, ...], with_refresh: bool) -> IssuedToken:
        access = f"{self.token_prefix}-at-{secrets.token_urlsafe(24)}"
        self.state.tokens.add(access)
        self.access_expiry[access] = time.monotonic() + self.access_ttl
        refresh = None
        if with_refresh:
            refresh = f"{self.token_prefix}-rt-{secrets.token_urlsafe(24)}"
            self.refresh_tokens[refresh] = (client_id, scopes)
        return IssuedToken(access, refresh, self.access_ttl, scopes, client_id)

    def token_state(self, token: str | None) -> str:
        """'valid', 'expired' or 'invalid' for a presented bearer token."""
        if not token or token not in self.state.tokens:
            return "invalid"
        expiry = self.access_expiry.get(token)
        if expiry is not None and time.monotonic() > expiry:
            return "expired"
        return "valid"

    def expire_all_access_tokens(self) -> None:
        """Test hook: every issued access token expires now."""
        with self.lock:
            for token in self.access_expiry:
                self.access_expiry[token] = 0.0
