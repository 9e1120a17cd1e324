"""Pipedrive webhooks (v2): HTTP Basic credentials instead of a signature; `meta` carries the event and
`data` the API v2 record for the main objects."""

from __future__ import annotations

import base64
import hmac
from datetime import datetime

import requests

from canonry.secrets import resolve_secret
from canonry.webhooks.contract import (
    Change,
    Delivery,
    IntakeEvent,
    Refused,
    Registration,
    RegistrationRefused,
    Settings,
    Uninterpretable,
    parse_iso,
    parse_json,
    record_id,
    require_secret,
)

ENTITIES: dict[str, str] = {
    "person": "persons", "organization": "organizations", "deal": "deals", "activity": "activities",
    "note": "notes", "lead": "leads", "user": "users", "stage": "stages", "pipeline": "pipelines",
}
FULL_RECORDS = ("persons", "organizations", "deals", "activities")  # `data` is the API v2 record


def verify(delivery: Delivery, settings: Settings) -> list[IntakeEvent]:
    """No signature: the HTTP Basic credentials configured on the webhook. v2 `meta` carries the event."""
    header = delivery.headers.get("authorization", "")
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":") \
            if header[:6].lower() == "basic " else ("", "", "")
    except (ValueError, UnicodeDecodeError):
        user, password = "", ""
    user_ok = hmac.compare_digest(user.encode(), (settings.username or "").encode())
    password_ok = hmac.compare_digest(password.encode(), require_secret(settings).encode())
    if not (user_ok and password_ok):
        raise Refused(401, "bad_basic_auth")
    document = parse_json(delivery.body)
    meta = document.get("meta") if isinstance(document, dict) else None
    if not isinstance(meta, dict) or "action" not in meta or "entity" not in meta:
        raise Refused(400, "not_an_event")
    # meta.id is the event's id; without it, the change itself (a retry repeats it, `attempt` aside).
    event_id = meta.get("id") or f"{meta['entity']}:{meta.get('entity_id')}:{meta['action']}:{meta.get('timestamp')}"
    return [IntakeEvent(str(event_id), None, delivery.body)]


def interpret(document: dict, received_at: datetime) -> list[Change]:
    meta = document.get("meta") or {}
    object_name = ENTITIES.get(str(meta.get("entity")))
    if object_name is None:
        raise Uninterpretable(f"pipedrive: unknown entity {str(meta.get('entity'))[:40]!r}")
    action = meta.get("action")
    occurred = parse_iso(meta.get("timestamp")) or received_at
    data, previous = document.get("data"), document.get("previous")
    remote_id = meta.get("entity_id") or (data or {}).get("id") or (previous or {}).get("id")
    if action == "delete":
        last = previous if isinstance(previous, dict) and previous.get("id") is not None else None
        deleted = Change(object_name, record_id(remote_id, "pipedrive delete"), occurred, is_deleted=True,
                         payload=last)
        # A merge (v2): the absorbed record is deleted with `merged_to_id`; the survivor changed.
        return [deleted, Change(object_name, None, occurred)] if meta.get("merged_to_id") else [deleted]
    if action not in ("create", "change"):
        raise Uninterpretable(f"pipedrive: unknown action {str(action)[:40]!r}")
    stamp = parse_iso((data or {}).get("update_time"))
    if object_name in FULL_RECORDS and isinstance(data, dict) and stamp is not None:
        return [Change(object_name, record_id(remote_id, "pipedrive"), stamp, payload=data)]
    return [Change(object_name, None, occurred)]


REGISTER_TIMEOUT = 30


def register(connection, url: str, key: str) -> Registration:
    """`POST /v1/webhooks` (all objects, all actions, webhooks v2) with the basic-auth credentials the intake
    checks (`webhooks.username` and the password `webhooks.secret` names)."""
    hooks = connection.webhooks
    if hooks is None or not hooks.username or not hooks.secret:
        raise RegistrationRefused("Pipedrive webhooks need `webhooks.username` and `webhooks.secret` (the basic-auth "
                                  "credentials the intake checks): add them to the connection's `webhooks:` block")
    body = {"subscription_url": url, "event_action": "*", "event_object": "*", "version": "2.0",
            "http_auth_user": hooks.username, "http_auth_password": resolve_secret(hooks.secret)}
    response = requests.post(f"{connection.base_url.rstrip('/')}/v1/webhooks", json=body, timeout=REGISTER_TIMEOUT,
                             headers={"x-api-token": key})
    if response.status_code >= 300:
        raise RegistrationRefused(f"POST /v1/webhooks refused with HTTP {response.status_code}")
    return Registration("pipedrive", [str(response.json()["data"]["id"])])
