"""`canonry webhooks register -c ID --url URL`: subscribe the intake URL at the provider, through its API
where it has one for a connection's own credential; elsewhere a clear error naming the provider's UI step.

* Pipedrive: `POST /v1/webhooks` (all objects, all actions, webhooks v2) with the basic-auth credentials
  the intake checks (`webhooks.username` and the password `webhooks.secret` names).
* Lever: `POST /v1/webhooks`, one webhook per event the drain interprets; Lever answers with the webhook's
  signature token, which goes where `webhooks.secret` points when that store is writable (never printed).
* A provider whose webhook adapter has `register` (Workable: `POST /spi/v3/subscriptions`).
* Greenhouse, Ashby, HubSpot, Salesforce: not registered here (see UI_STEPS)."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from canonry.config import Connection
from canonry.errors import ConfigError
from canonry.secrets import resolve_secret, store_secret, writable

LEVER_EVENTS = ["applicationCreated", "candidateHired", "candidateStageChange", "candidateArchiveChange",
                "candidateDeleted", "interviewCreated", "interviewUpdated", "interviewDeleted"]
TIMEOUT = 30

UI_STEPS = {
    "greenhouse": "Greenhouse has no API to create web hooks: in Greenhouse, Configure > Dev Center > Web Hooks, "
                  "add one per event with Endpoint URL {url} and the secret key `webhooks.secret` names",
    "ashby": "not registered by canonry yet: in Ashby, Admin > Integrations > Webhooks, add one per event type "
             "with Request URL {url} and the secret token `webhooks.secret` names",
    "hubspot": "HubSpot app webhook subscriptions belong to the app (its developer account), not to this "
               "connection's token: in the app's settings, Webhooks, set Target URL {url} and subscribe to "
               "contact/company/deal creation, propertyChange and deletion",
    "salesforce": "Salesforce has no HTTP webhook to register: create an Outbound Message (Setup > Process "
                  "Automation > Outbound Messages) with Endpoint URL {url}, sent by a flow on the objects synced",
}


@dataclass
class Registration:
    provider: str
    webhook_ids: list[str]
    note: str = ""


def _key(connection: Connection) -> str:
    if connection.auth.kind != "api_key":
        raise ConfigError(f"{connection.id}: `webhooks register` uses an API key connection "
                          f"(auth.kind is {connection.auth.kind})",
                          hint="register the webhook in the provider's settings instead (docs/WEBHOOKS.md)")
    return resolve_secret(connection.auth.secret)


def _check(response: requests.Response, connection: Connection, what: str) -> dict:
    if response.status_code >= 300:
        raise ConfigError(f"{connection.id}: {what} refused with HTTP {response.status_code}",
                          hint="check the connection's key has webhook write permission "
                               "(Lever: webhooks:write:admin), then run the command again")
    return response.json()


def _pipedrive(connection: Connection, url: str) -> Registration:
    hooks = connection.webhooks
    if hooks is None or not hooks.username or not hooks.secret:
        raise ConfigError(f"{connection.id}: Pipedrive webhooks need `webhooks.username` and `webhooks.secret` "
                          "(the basic-auth credentials the intake checks)",
                          hint="add them to the connection's `webhooks:` block, then run the command again")
    body = {"subscription_url": url, "event_action": "*", "event_object": "*", "version": "2.0",
            "http_auth_user": hooks.username, "http_auth_password": resolve_secret(hooks.secret)}
    response = requests.post(f"{connection.base_url.rstrip('/')}/v1/webhooks", json=body, timeout=TIMEOUT,
                             headers={"x-api-token": _key(connection)})
    return Registration("pipedrive", [str(_check(response, connection, "POST /v1/webhooks")["data"]["id"])])


def _lever(connection: Connection, url: str) -> Registration:
    key, ids, token = _key(connection), [], None
    for event in LEVER_EVENTS:
        response = requests.post(f"{connection.base_url.rstrip('/')}/v1/webhooks", json={"url": url, "event": event},
                                 auth=(key, ""), timeout=TIMEOUT)
        data = _check(response, connection, f"POST /v1/webhooks ({event})")["data"]
        ids.append(str(data["id"]))
        token = data.get("signatureToken") or token
    reference = connection.webhooks.secret if connection.webhooks else None
    if token and reference and writable(reference):
        store_secret(reference, token)
        note = f"signature token stored in {reference.split(':', 1)[0]}:…"
    else:
        note = ("put the webhooks' signature token (Lever: Settings > Integrations and API > Webhooks) where "
                "`webhooks.secret` points")
    return Registration("lever", ids, note)


REGISTRARS = {"pipedrive": _pipedrive, "lever": _lever}


def register(connection: Connection, url: str) -> Registration:
    """Subscribe `url` to the connection's changes at the provider; ConfigError where that takes a UI step."""
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"--url {url!r} is not an http(s) URL",
                          hint="pass the public URL of /hooks/<connection id> on `canonry webhooks serve`")
    registrar = REGISTRARS.get(connection.provider) or _adapter_registrar(connection.provider)
    if registrar is None:
        step = UI_STEPS.get(connection.provider, "register the webhook in the provider's settings with URL {url}")
        raise ConfigError(f"{connection.id}: {step.format(url=url)}",
                          hint="then run `canonry webhooks serve`; nothing was registered")
    return registrar(connection, url)


def _adapter_registrar(provider: str):
    """A provider whose webhook adapter subscribes through its API (`register(base_url, key, url)`)."""
    from canonry.webhooks.contract import Refused
    from canonry.webhooks.verify import adapter

    try:
        module = adapter(provider)
    except Refused:
        return None
    subscribe = getattr(module, "register", None)
    if subscribe is None:
        return None

    def registrar(connection: Connection, url: str) -> Registration:
        try:
            return Registration(provider, subscribe(connection.base_url, _key(connection), url))
        except (RuntimeError, requests.RequestException) as error:
            raise ConfigError(f"{connection.id}: registering the webhook failed: {error}",
                              hint="check the key may manage subscriptions, then run the command again") from None

    return registrar
