"""Lever webhooks: the body's `signature` signs `token + triggeredAt`; events carry ids only (a delete
excepted), so they mean "fetch"."""

from __future__ import annotations

from datetime import datetime

import requests

from canonry.secrets import store_secret, writable
from canonry.webhooks.contract import (
    Change,
    Delivery,
    IntakeEvent,
    Refused,
    Registration,
    RegistrationRefused,
    Settings,
    Uninterpretable,
    ascii_safe,
    from_epoch_ms,
    parse_json,
    record_id,
    require_secret,
)
from sources.lever.helpers import verify_webhook


def verify(delivery: Delivery, settings: Settings) -> list[IntakeEvent]:
    """Body `signature` = hex HMAC-SHA256(signature token, token + triggeredAt); the token is unique per
    event (a retry resends it), so it is the dedupe key."""
    document = parse_json(delivery.body)
    if not isinstance(document, dict):
        raise Refused(400, "not_an_event")
    if not ascii_safe(verify_webhook, document, require_secret(settings)):
        raise Refused(401, "bad_signature")
    triggered = document.get("triggeredAt")
    return [IntakeEvent(str(document["token"]), triggered if isinstance(triggered, int) else None, delivery.body)]


def interpret(document: dict, received_at: datetime) -> list[Change]:
    event, data = document.get("event"), document.get("data") or {}
    occurred = from_epoch_ms(document.get("triggeredAt")) or received_at
    if event == "candidateDeleted":
        return [Change("opportunities", record_id(data.get("opportunityId"), event), occurred, is_deleted=True)]
    if not isinstance(event, str) or not event:
        raise Uninterpretable("lever: no event name")
    # Ids only: read the changed opportunities (and their children) through an incremental sync.
    return [Change("interviews" if event.startswith("interview") else "opportunities", None, occurred)]


# One webhook per event the drain interprets.
REGISTERED_EVENTS = ("applicationCreated", "candidateHired", "candidateStageChange", "candidateArchiveChange",
                     "candidateDeleted", "interviewCreated", "interviewUpdated", "interviewDeleted")
REGISTER_TIMEOUT = 30


def register(connection, url: str, key: str) -> Registration:
    """`POST /v1/webhooks`, one per event; Lever answers with the webhooks' signature token, which goes where
    `webhooks.secret` points when that store is writable (never printed)."""
    ids, token = [], None
    for event in REGISTERED_EVENTS:
        response = requests.post(f"{connection.base_url.rstrip('/')}/v1/webhooks", json={"url": url, "event": event},
                                 auth=(key, ""), timeout=REGISTER_TIMEOUT)
        if response.status_code >= 300:
            raise RegistrationRefused(f"POST /v1/webhooks ({event}) refused with HTTP {response.status_code} "
                                      "(the key needs webhooks:write:admin)")
        data = response.json()["data"]
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
