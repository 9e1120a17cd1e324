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
NON_SECRET_FIELDS = ("instance_url", "token_endpoint", "client_id", "scope", "id", "issued_at", "expires_at")
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

    def refresh_now() -> str:
        """Refresh regardless of the stored expiry, unless another thread or process already did since
        the caller read its token (Salesforce returns no expiry: a 401 is the only signal)."""
        stale = _load(reference).get("access_token")
        with _thread_lock(connection_id), _file_lock(connection_id):
            token = _load(reference)
            if token.get("access_token") != stale:
                return token["access_token"]
            return _refresh(connection_id, provider, reference, token, client_secret_ref)["access_token"]

    def metadata() -> dict:
        token = _load(reference)
        return {k: v for k, v in token.items() if k in NON_SECRET_FIELDS}

    return Credential("oauth2", reference, current, metadata=metadata, refresh=refresh_now)


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
