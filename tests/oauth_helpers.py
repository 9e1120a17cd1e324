"""OAuth test helpers: a scripted browser, a sandbox with a registered OAuth app, connections for it."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
import yaml

from canonry.config import Connection, load_connections
from canonry.secrets import resolve_secret, store_secret

CLIENT_ID = "canonry-hubspot-client"
CLIENT_SECRET = "sandbox-hubspot-client-secret"
CLIENT_SECRET_ENV = "CANONRY_TEST_HUBSPOT_CLIENT_SECRET"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    """A HubSpot sandbox with a registered OAuth app, and a connections file pointed at it."""

    server: object
    path: Path
    redirect_uri: str
    alt_redirect_uri: str
    entries: list[dict] = field(default_factory=list)

    @property
    def oauth(self):
        return self.server.simulator.oauth

    def add(self, connection_id: str, **overrides) -> Connection:
        auth = {"kind": "oauth2", "secret": f"local:{connection_id}-token", "client_id": CLIENT_ID,
                "client_secret": f"env:{CLIENT_SECRET_ENV}", "redirect_uri": self.redirect_uri,
                **overrides.pop("auth", {})}
        entry = {"id": connection_id, "tenant": "acme", "provider": "hubspot", "base_url": self.server.base_url,
                 "auth": auth, **overrides}
        self.entries = [e for e in self.entries if e["id"] != connection_id] + [entry]
        self.path.write_text(yaml.safe_dump({"connections": self.entries}, sort_keys=False))
        return self.get(connection_id, require_tokens=False)

    def get(self, connection_id: str, require_tokens: bool = True) -> Connection:
        return load_connections(self.path, require_tokens=require_tokens).get(connection_id)

    def token_set(self, connection: Connection) -> dict:
        return json.loads(resolve_secret(connection.auth.secret))

    def edit_token_set(self, connection: Connection, **changes) -> dict:
        token = {**self.token_set(connection), **changes}
        store_secret(connection.auth.secret, json.dumps(token))
        return token
