"""Ashby webhooks: `Ashby-Signature: sha256=<hex>` over the raw body; events carry the full record."""

from __future__ import annotations

from datetime import datetime

from canonry.webhooks.contract import (
    Change,
    Delivery,
    IntakeEvent,
    Refused,
    Settings,
    Uninterpretable,
    ascii_safe,
    body_hash,
    parse_iso,
    parse_json,
    record_id,
    require_secret,
)
from sources.ashby.helpers import updated_at, verify_webhook_signature
from sources.ashby.settings import ENDPOINTS

PREFIXES: dict[str, tuple[str, str]] = {   # event name prefix -> (raw object, data key)
    "candidate": ("candidates", "candidate"), "application": ("applications", "application"),
    "job": ("jobs", "job"), "interviewSchedule": ("interview_schedules", "interviewSchedule"),
    "offer": ("offers", "offer"),
}


def verify(delivery: Delivery, settings: Settings) -> list[IntakeEvent]:
    """`Ashby-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`; no event id: the body's hash."""
    if not ascii_safe(verify_webhook_signature, require_secret(settings), delivery.body,
                      delivery.headers.get("ashby-signature")):
        raise Refused(401, "bad_signature")
    document = parse_json(delivery.body)
    if not isinstance(document, dict) or "action" not in document:
        raise Refused(400, "not_an_event")
    return [IntakeEvent(body_hash(delivery.body), None, delivery.body)]


def interpret(document: dict, received_at: datetime) -> list[Change]:
    action = str(document.get("action") or "")
    if action == "ping":
        return []
    prefix = next((p for p in sorted(PREFIXES, key=len, reverse=True) if action.startswith(p)), None)
    if prefix is None:
        raise Uninterpretable(f"ashby: unknown action {action[:60]!r}")
    object_name, key = PREFIXES[prefix]
    record = (document.get("data") or {}).get(key)
    if not isinstance(record, dict):
        raise Uninterpretable(f"ashby {action}: no {key} in data")
    remote_id = record_id(record.get("id"), action)
    if action.endswith("Delete"):
        return [Change(object_name, remote_id, received_at, is_deleted=True)]
    stamp = parse_iso(updated_at(record, ENDPOINTS[object_name]))
    if stamp is None:  # an id only (e.g. an archived record): read it
        return [Change(object_name, None, received_at)]
    return [Change(object_name, remote_id, stamp, payload=record)]
