"""Greenhouse webhooks: `Signature: sha256 <hex>` over the raw body; payloads are Harvest v1-shaped while raw
holds v3 records, so every event but a delete means "fetch" (an incremental sync reads what changed)."""

from __future__ import annotations

from datetime import datetime

from canonry.webhooks.contract import (
    Change,
    Delivery,
    IntakeEvent,
    Refused,
    Settings,
    Uninterpretable,
    body_hash,
    parse_json,
    record_id,
    require_secret,
)
from sources.greenhouse.helpers import verify_webhook_signature

# action -> (raw object, payload keys to find the record under); deletes are named *delete*/…_deleted.
ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "update_candidate": ("candidates", ("candidate",)),
    "delete_candidate": ("candidates", ("person", "candidate")),
    "candidate_anonymized": ("candidates", ("candidate",)),
    "new_candidate_application": ("applications", ("application",)),
    "new_prospect_application": ("applications", ("application",)),
    "application_updated": ("applications", ("application",)),
    "candidate_stage_change": ("applications", ("application",)),
    "hire_candidate": ("applications", ("application",)),
    "unhire_candidate": ("applications", ("application",)),
    "reject_candidate": ("applications", ("application",)),
    "unreject_candidate": ("applications", ("application",)),
    "delete_application": ("applications", ("application",)),
    "job_created": ("jobs", ("job",)), "job_updated": ("jobs", ("job",)), "job_approved": ("jobs", ("job",)),
    "job_deleted": ("jobs", ("job",)),
    "offer_created": ("offers", ("offer",)), "offer_approved": ("offers", ("offer",)),
    "offer_updated": ("offers", ("offer",)), "offer_deleted": ("offers", ("offer",)),
    "interview_deleted": ("scheduled_interviews", ("interview", "scheduled_interview")),
    "job_interview_stage_deleted": ("job_stages", ("job_stage", "job_interview_stage")),
    "department_deleted": ("departments", ("department",)),
    "office_deleted": ("offices", ("office",)),
}


def verify(delivery: Delivery, settings: Settings) -> list[IntakeEvent]:
    """`Signature: sha256 <hex HMAC-SHA256(secret, raw body)>`; `Greenhouse-Event-ID` per delivery."""
    if not verify_webhook_signature(require_secret(settings), delivery.body, delivery.headers.get("signature")):
        raise Refused(401, "bad_signature")
    document = parse_json(delivery.body)
    if not isinstance(document, dict) or "action" not in document:
        raise Refused(400, "not_an_event")
    return [IntakeEvent(delivery.headers.get("greenhouse-event-id") or body_hash(delivery.body), None, delivery.body)]


def interpret(document: dict, received_at: datetime) -> list[Change]:
    action = document.get("action")
    if action == "ping":
        return []
    if action not in ACTIONS:
        raise Uninterpretable(f"greenhouse: unknown action {str(action)[:60]!r}")
    object_name, keys = ACTIONS[action]
    payload = document.get("payload") or {}
    record = next((payload[k] for k in keys if isinstance(payload.get(k), dict)), None)
    if "delete" not in action:
        return [Change(object_name, None, received_at)]
    if record is None:
        raise Uninterpretable(f"greenhouse {action}: no record in the payload")
    # Deleting a candidate deletes its applications too: the event lists them.
    changes = [Change(object_name, record_id(record.get("id"), action), received_at, is_deleted=True)]
    changes += [Change("applications", str(i), received_at, is_deleted=True)
                for i in record.get("deleted_application_ids") or []]
    return changes
