"""HubSpot webhooks (v3 signatures; app subscriptions): verification and what an event means for raw."""

from __future__ import annotations

from datetime import datetime

import orjson

from canonry.webhooks.contract import (
    Change,
    Delivery,
    IntakeEvent,
    Refused,
    Settings,
    Uninterpretable,
    from_epoch_ms,
    parse_json,
    record_id,
    require_secret,
)
from sources.hubspot.helpers import verify_webhook_v3

WINDOW_MS = 5 * 60 * 1000   # v3: reject a request timestamp older than 5 minutes
OBJECT_TYPES: dict[str, str] = {"contact": "contacts", "company": "companies", "deal": "deals",
                                "0-1": "contacts", "0-2": "companies", "0-3": "deals"}
DELETES = ("deletion", "privacyDeletion")


def verify(delivery: Delivery, settings: Settings) -> list[IntakeEvent]:
    """v3: base64 HMAC-SHA256(client secret, METHOD + URI + body + timestamp), timestamp within 5 min;
    the body is a JSON array of events, each with its own `eventId` and `occurredAt`."""
    timestamp = delivery.headers.get("x-hubspot-request-timestamp", "")
    if not timestamp.isdigit() or abs(delivery.received_ms - int(timestamp)) > WINDOW_MS:
        raise Refused(401, "stale_timestamp")
    if not verify_webhook_v3(require_secret(settings), delivery.method, delivery.url, delivery.body,
                             timestamp, delivery.headers.get("x-hubspot-signature-v3")):
        raise Refused(401, "bad_signature")
    events = parse_json(delivery.body)
    if not isinstance(events, list) or not all(isinstance(e, dict) and "eventId" in e for e in events):
        raise Refused(400, "not_an_event_array")
    return [IntakeEvent(str(e["eventId"]), e.get("occurredAt") if isinstance(e.get("occurredAt"), int) else None,
                        orjson.dumps(e)) for e in events]


def interpret(document: dict, received_at: datetime) -> list[Change]:
    subscription = str(document.get("subscriptionType") or "")
    kind, _, what = subscription.partition(".")
    object_name = OBJECT_TYPES.get(str(document.get("objectTypeId")) if kind == "object" else kind)
    if object_name is None or not what:
        raise Uninterpretable(f"hubspot: unknown subscription {subscription[:60]!r}")
    occurred = from_epoch_ms(document.get("occurredAt")) or received_at
    remote_id = record_id(document.get("objectId"), subscription)
    if what in DELETES:
        return [Change(object_name, remote_id, occurred, is_deleted=True)]
    if what == "merge":  # the absorbed records are gone; the survivor changed
        return [*(Change(object_name, str(i), occurred, is_deleted=True)
                  for i in document.get("mergedObjectIds") or []), Change(object_name, None, occurred)]
    return [Change(object_name, None, occurred)]
