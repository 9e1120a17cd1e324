"""Workable webhooks (workable.readme.io/reference/webhooks): subscriptions to `candidate_created` and
`candidate_moved`, each delivery the candidate as the details endpoint renders it (its state when sent),
signed `X-Workable-Signature: <hex HMAC-SHA256(key, raw body)>` with the account token (or the OAuth app's
secret) as key — so `webhooks.secret` names the same secret as the connection's token."""

from __future__ import annotations

from datetime import datetime

import requests

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
    body_hash,
    parse_iso,
    parse_json,
    record_id,
    require_secret,
)
from sources.workable.helpers import verify_webhook_signature
from sources.workable.settings import API_PREFIX

EVENTS = ("candidate_created", "candidate_moved")
TIMEOUT = 30


def verify(delivery: Delivery, settings: Settings) -> list[IntakeEvent]:
    if not ascii_safe(verify_webhook_signature, require_secret(settings), delivery.body,
                      delivery.headers.get("x-workable-signature")):
        raise Refused(401, "bad_signature")
    document = parse_json(delivery.body)
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        raise Refused(400, "not_an_event")
    event_id = document.get("id")
    return [IntakeEvent(str(event_id) if event_id else body_hash(delivery.body), None, delivery.body)]


def interpret(document: dict, received_at: datetime) -> list[Change]:
    """Both events carry the whole candidate: a raw row at its own update time (an older event never wins)."""
    event = str(document.get("event_type") or document.get("type") or "")
    if event not in EVENTS:
        raise Uninterpretable(f"workable: unknown event {event[:60]!r}")
    data = document["data"]
    candidate = data.get("candidate") if isinstance(data.get("candidate"), dict) else data
    remote_id = record_id(candidate.get("id"), event)
    stamp = parse_iso(candidate.get("updated_at"))
    if stamp is None:
        return [Change("candidates", None, received_at)]  # no update time: read what changed
    return [Change("candidates", remote_id, stamp, payload=candidate)]


def register(connection, url: str, key: str) -> Registration:
    """Subscribe `url` to both candidate events (`POST /subscriptions`)."""
    ids = []
    for event in EVENTS:
        response = requests.post(f"{connection.base_url.rstrip('/')}{API_PREFIX}/subscriptions", timeout=TIMEOUT,
                                 json={"target": url, "event": event},
                                 headers={"Authorization": f"Bearer {key}"})
        if response.status_code >= 300:
            raise RegistrationRefused(f"POST {API_PREFIX}/subscriptions ({event}) answered HTTP "
                                      f"{response.status_code} (the token needs the w_candidates scope)")
        ids.append(str(response.json()["id"]))
    return Registration("workable", ids)
