"""OAuth test helpers: a scripted browser, a sandbox with a registered OAuth app, connections for it.

`PROVIDERS` describes each OAuth provider sandbox the dance runs against: every oauth2 provider of the
registry whose test module (tests/sources/test_<slug>.py) declares an `OAUTH_DANCE` — what a small sync reads
and the least scopes that needs — with its sandbox's registered app and the paths of its authorization server
(from the provider's spec)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
import yaml

from canonry.config import Connection
from canonry.providers import slugs
from canonry.providers import spec as provider_spec
from canonry.secrets import resolve_secret, store_secret
from canonry.validation import load_connections

CLIENT_SECRET_ENV = "CANONRY_TEST_HUBSPOT_CLIENT_SECRET"


@dataclass(frozen=True)
class OAuthProvider:
    """One provider's OAuth sandbox as the tests see it."""

    slug: str
    client_id: str
    client_secret: str
    authorize_path: str
    token_path: str
    revoke_path: str
    objects: tuple[str, ...]                  # what the dance's sync reads
    least_scopes: tuple[str, ...]             # what connecting for `objects` must request, in order
    checks: tuple[tuple[str, str], ...]       # (raw resource, sandbox truth object) compared after the sync
    options: dict = field(default_factory=dict)  # sandbox options besides redirect_uris
    specific_code_errors: bool = True         # the token endpoint says *why* a code was refused

    @property
    def secret_env(self) -> str:
        return f"CANONRY_TEST_{self.slug.upper()}_CLIENT_SECRET"

    def code_reason(self, reason: str) -> str:
        """The reason canonry can give for a refused code: the precise one only if the provider says why
        (Salesforce answers every bad code with `invalid_grant: authentication failure`)."""
        return reason if self.specific_code_errors else "code_rejected"


def _path(oauth, name: str) -> str:
    url = getattr(oauth, f"{name}_url")
    return getattr(oauth, f"{name}_path") or urlsplit(url).path


def _providers() -> dict[str, OAuthProvider]:
    import importlib

    out = {}
    for slug in slugs():
        spec = provider_spec(slug)
        dance = getattr(importlib.import_module(f"tests.sources.test_{slug}"), "OAUTH_DANCE", None)
        if "oauth2" not in spec.auth_kinds or dance is None:
            continue
        sandbox = importlib.import_module(f"canonry.sandbox.{slug}")
        out[slug] = OAuthProvider(slug, sandbox.DEFAULT_CLIENT_ID, sandbox.DEFAULT_CLIENT_SECRET,
                                  _path(spec.oauth, "authorize"), _path(spec.oauth, "token"),
                                  _path(spec.oauth, "revoke"), **dance)
    return out


PROVIDERS: dict[str, OAuthProvider] = _providers()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def reserved_ports(count: int) -> Iterator[list[int]]:
    """Free loopback ports held (bound, not listening) until the block ends, so that a server started
    inside the block on port 0 cannot be handed one of them."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        yield [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def authorize(url: str) -> str:
    """The browser step: follow the authorization URL; the provider auto-approves and redirects.
    Returns the redirect (callback) URL without visiting it."""
    response = requests.get(url, allow_redirects=False, timeout=10)
    if response.status_code not in (302, 303):
        raise RuntimeError(f"the authorization page answered {response.status_code}: {response.text[:200]}")
    return response.headers["Location"]


def scripted_browser(url: str) -> None:
    """A user who approves: authorize, then the browser follows the redirect to our callback."""
    requests.get(authorize(url), timeout=10)


def callback_params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@dataclass
class OAuthSandbox:
    """A provider sandbox (HubSpot unless told) with a registered OAuth app, and a connections file
    pointed at it."""

    server: object
    path: Path
    redirect_uri: str
    alt_redirect_uri: str
    entries: list[dict] = field(default_factory=list)
    provider: OAuthProvider = field(default_factory=lambda: PROVIDERS["hubspot"])

    @property
    def oauth(self):
        return self.server.simulator.oauth

    def add(self, connection_id: str, **overrides) -> Connection:
        auth = {"kind": "oauth2", "secret": f"local:{connection_id}-token", "client_id": self.provider.client_id,
                "client_secret": f"env:{self.provider.secret_env}", "redirect_uri": self.redirect_uri,
                **overrides.pop("auth", {})}
        entry = {"id": connection_id, "tenant": "acme", "provider": self.provider.slug,
                 "base_url": self.server.base_url, "auth": auth, **overrides}
        self.entries = [e for e in self.entries if e["id"] != connection_id] + [entry]
        self.path.write_text(yaml.safe_dump({"connections": self.entries}, sort_keys=False))
        return self.get(connection_id, require_tokens=False)

    def get(self, connection_id: str, require_tokens: bool = True) -> Connection:
        # Like `canonry connect`: the OAuth tests sync subsets without building dbt (tests/conftest.write_connections).
        return load_connections(self.path, require_tokens=require_tokens, builds_canonical=False).get(connection_id)

    def token_set(self, connection: Connection) -> dict:
        return json.loads(resolve_secret(connection.auth.secret))

    def edit_token_set(self, connection: Connection, **changes) -> dict:
        token = {**self.token_set(connection), **changes}
        store_secret(connection.auth.secret, json.dumps(token))
        return token
