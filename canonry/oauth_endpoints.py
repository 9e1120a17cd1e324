"""OAuth, the provider side: where a provider's authorization server is (its `SPEC.oauth`, or a connection's
`base_url` for sandboxes and regional hosts, or `auth.*_url`), the least scopes a connection needs, and the
error every OAuth step raises (`AuthorizationError`). Connecting is `canonry.oauth`; the stored token set
and its refresh are `canonry.oauth_tokens`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from canonry import providers
from canonry.errors import CanonryError, ErrorClass
from canonry.netsafety import guard_session
from canonry.providers import OAuthSpec, ProviderSpec

HTTP_TIMEOUT = 30


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


def authorization_session(connection, client_secret: str | None, *, verify: bool | str = True, **kwargs):
    from authlib.integrations.requests_client import OAuth2Session

    session = OAuth2Session(connection.auth.client_id, client_secret,
                            token_endpoint_auth_method=endpoints(connection).auth_method,
                            revocation_endpoint_auth_method=endpoints(connection).auth_method,
                            default_timeout=HTTP_TIMEOUT, **kwargs)
    session.verify = verify
    guard_session(session, allow_private=getattr(connection, "allow_private_network", False))
    return session


def granted_scopes(issued: dict, requested: list[str]) -> list[str]:
    if isinstance(issued.get("scopes"), list):
        return [str(s) for s in issued["scopes"]]
    if isinstance(issued.get("scope"), str):
        return issued["scope"].replace(",", " ").split()
    return list(requested)


def token_expiry(issued: dict, provider: str | None = None) -> float | None:
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


