"""`canonry webhooks register -c ID --url URL`: subscribe the intake URL at the provider, through its API
where the provider's webhook adapter has `register` (Pipedrive, Lever, Workable: `sources/<slug>/webhooks.py`);
elsewhere a clear error naming the provider's UI step (`WebhookSpec.ui_step` in its settings)."""

from __future__ import annotations

import requests

from canonry.config import Connection
from canonry.errors import ConfigError
from canonry.providers import spec
from canonry.secrets import resolve_secret
from canonry.webhooks.contract import Refused, Registration, RegistrationRefused

__all__ = ["Registration", "register"]


def _key(connection: Connection) -> str:
    if connection.auth.kind != "api_key":
        raise ConfigError(f"{connection.id}: `webhooks register` uses an API key connection "
                          f"(auth.kind is {connection.auth.kind})",
                          hint="register the webhook in the provider's settings instead (docs/WEBHOOKS.md)")
    return resolve_secret(connection.auth.secret)


def register(connection: Connection, url: str) -> Registration:
    """Subscribe `url` to the connection's changes at the provider; ConfigError where that takes a UI step."""
    from canonry.webhooks.verify import adapter

    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"--url {url!r} is not an http(s) URL",
                          hint="pass the public URL of /hooks/<connection id> on `canonry webhooks serve`")
    try:
        subscribe = getattr(adapter(connection.provider), "register", None)
    except Refused:
        subscribe = None
    if subscribe is None:
        webhook = spec(connection.provider).webhook
        step = (webhook.ui_step if webhook and webhook.ui_step
                else "register the webhook in the provider's settings with URL {url}")
        raise ConfigError(f"{connection.id}: {step.format(url=url)}",
                          hint="then run `canonry webhooks serve`; nothing was registered")
    try:
        return subscribe(connection, url, _key(connection))
    except (RegistrationRefused, requests.RequestException) as error:
        raise ConfigError(f"{connection.id}: registering the webhook failed: {error}",
                          hint="check the key may manage webhooks and the connection's `webhooks:` block, then "
                               "run the command again") from None
