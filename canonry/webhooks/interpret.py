"""What a journaled event means for raw: per provider, a list of `Change`s.

* a delete (`is_deleted`, the provider's occurrence time or else the receipt time): becomes a raw row at
  once, carrying the record's last known payload (or the one the event carries);
* a full record (Ashby objects, Pipedrive v2 `data`): a raw row with the record's own update time, so an
  out-of-order event older than the row already in raw never wins (latest_raw orders by that time);
* anything else (ids only: Lever, HubSpot, Salesforce Outbound Messages; Greenhouse, whose webhook
  payloads are Harvest v1-shaped while raw holds v3 records): "fetch" — the drain runs one incremental
  sync of the connection, which reads exactly what changed.

An event none of this understands raises `Uninterpretable` and goes to the dead letters with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from sources.ashby.helpers import updated_at as ashby_updated_at
from sources.ashby.settings import ENDPOINTS as ASHBY_ENDPOINTS
from sources.salesforce.settings import SOBJECTS


class Uninterpretable(Exception):
    """The event cannot be applied (unknown type, missing id): dead-lettered with this reason."""


@dataclass(frozen=True)
class Change:
    object: str
    remote_id: str | None          # None: the whole object (fetch only)
    occurred_at: datetime | None
    is_deleted: bool = False
    payload: dict | None = None    # a full record; None: fetch (or, for a delete, the last known payload)

    @property
    def fetch(self) -> bool:
        return not self.is_deleted and self.payload is None


def _ms(value: object) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, UTC) if isinstance(value, int | float) else None


def _iso(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("+0000", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _id(value: object, what: str) -> str:
    if value is None or value == "":
        raise Uninterpretable(f"{what}: no record id")
    return str(value)


# -- Greenhouse -------------------------------------------------------------------------------------
# action -> (raw object, payload keys to find the record under); deletes are named *delete*/…_deleted.
GREENHOUSE_ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
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


def greenhouse(document: dict, received_at: datetime) -> list[Change]:
    action = document.get("action")
    if action == "ping":
        return []
    if action not in GREENHOUSE_ACTIONS:
        raise Uninterpretable(f"greenhouse: unknown action {str(action)[:60]!r}")
    object_name, keys = GREENHOUSE_ACTIONS[action]
    payload = document.get("payload") or {}
    record = next((payload[k] for k in keys if isinstance(payload.get(k), dict)), None)
    if "delete" not in action:
        return [Change(object_name, None, received_at)]
    if record is None:
        raise Uninterpretable(f"greenhouse {action}: no record in the payload")
    # Deleting a candidate deletes its applications too: the event lists them.
    changes = [Change(object_name, _id(record.get("id"), action), received_at, is_deleted=True)]
    changes += [Change("applications", str(i), received_at, is_deleted=True)
                for i in record.get("deleted_application_ids") or []]
    return changes


# -- Lever ------------------------------------------------------------------------------------------
def lever(document: dict, received_at: datetime) -> list[Change]:
    event, data = document.get("event"), document.get("data") or {}
    occurred = _ms(document.get("triggeredAt")) or received_at
    if event == "candidateDeleted":
        return [Change("opportunities", _id(data.get("opportunityId"), event), occurred, is_deleted=True)]
    if not isinstance(event, str) or not event:
        raise Uninterpretable("lever: no event name")
    # Ids only: read the changed opportunities (and their children) through an incremental sync.
    return [Change("interviews" if event.startswith("interview") else "opportunities", None, occurred)]


# -- Ashby ------------------------------------------------------------------------------------------
ASHBY_PREFIXES: dict[str, tuple[str, str]] = {   # event name prefix -> (raw object, data key)
    "candidate": ("candidates", "candidate"), "application": ("applications", "application"),
    "job": ("jobs", "job"), "interviewSchedule": ("interview_schedules", "interviewSchedule"),
    "offer": ("offers", "offer"),
}


def ashby(document: dict, received_at: datetime) -> list[Change]:
    action = str(document.get("action") or "")
    if action == "ping":
        return []
    prefix = next((p for p in sorted(ASHBY_PREFIXES, key=len, reverse=True) if action.startswith(p)), None)
    if prefix is None:
        raise Uninterpretable(f"ashby: unknown action {action[:60]!r}")
    object_name, key = ASHBY_PREFIXES[prefix]
    record = (document.get("data") or {}).get(key)
    if not isinstance(record, dict):
        raise Uninterpretable(f"ashby {action}: no {key} in data")
    remote_id = _id(record.get("id"), action)
    if action.endswith("Delete"):
        return [Change(object_name, remote_id, received_at, is_deleted=True)]
    stamp = _iso(ashby_updated_at(record, ASHBY_ENDPOINTS[object_name]))
    if stamp is None:  # an id only (e.g. an archived record): read it
        return [Change(object_name, None, received_at)]
    return [Change(object_name, remote_id, stamp, payload=record)]


# -- Pipedrive (webhooks v2) -------------------------------------------------------------------------
PIPEDRIVE_ENTITIES: dict[str, str] = {
    "person": "persons", "organization": "organizations", "deal": "deals", "activity": "activities",
    "note": "notes", "lead": "leads", "user": "users", "stage": "stages", "pipeline": "pipelines",
}
PIPEDRIVE_FULL_RECORDS = ("persons", "organizations", "deals", "activities")  # `data` is the API v2 record


def pipedrive(document: dict, received_at: datetime) -> list[Change]:
    meta = document.get("meta") or {}
    object_name = PIPEDRIVE_ENTITIES.get(str(meta.get("entity")))
    if object_name is None:
        raise Uninterpretable(f"pipedrive: unknown entity {str(meta.get('entity'))[:40]!r}")
    action = meta.get("action")
    occurred = _iso(meta.get("timestamp")) or received_at
    data, previous = document.get("data"), document.get("previous")
    remote_id = meta.get("entity_id") or (data or {}).get("id") or (previous or {}).get("id")
    if action == "delete":
        last = previous if isinstance(previous, dict) and previous.get("id") is not None else None
        deleted = Change(object_name, _id(remote_id, "pipedrive delete"), occurred, is_deleted=True, payload=last)
        # A merge (v2): the absorbed record is deleted with `merged_to_id`; the survivor changed.
        return [deleted, Change(object_name, None, occurred)] if meta.get("merged_to_id") else [deleted]
    if action not in ("create", "change"):
        raise Uninterpretable(f"pipedrive: unknown action {str(action)[:40]!r}")
    stamp = _iso((data or {}).get("update_time"))
    if object_name in PIPEDRIVE_FULL_RECORDS and isinstance(data, dict) and stamp is not None:
        return [Change(object_name, _id(remote_id, "pipedrive"), stamp, payload=data)]
    return [Change(object_name, None, occurred)]


# -- HubSpot ----------------------------------------------------------------------------------------
HUBSPOT_TYPES: dict[str, str] = {"contact": "contacts", "company": "companies", "deal": "deals",
                                 "0-1": "contacts", "0-2": "companies", "0-3": "deals"}
HUBSPOT_DELETES = ("deletion", "privacyDeletion")


def hubspot(document: dict, received_at: datetime) -> list[Change]:
    subscription = str(document.get("subscriptionType") or "")
    kind, _, what = subscription.partition(".")
    object_name = HUBSPOT_TYPES.get(str(document.get("objectTypeId")) if kind == "object" else kind)
    if object_name is None or not what:
        raise Uninterpretable(f"hubspot: unknown subscription {subscription[:60]!r}")
    occurred = _ms(document.get("occurredAt")) or received_at
    remote_id = _id(document.get("objectId"), subscription)
    if what in HUBSPOT_DELETES:
        return [Change(object_name, remote_id, occurred, is_deleted=True)]
    if what == "merge":  # the absorbed records are gone; the survivor changed
        return [*(Change(object_name, str(i), occurred, is_deleted=True)
                  for i in document.get("mergedObjectIds") or []), Change(object_name, None, occurred)]
    return [Change(object_name, None, occurred)]


# -- Salesforce (Outbound Messages, journaled as {sobject, fields}) ---------------------------------------
SALESFORCE_RESOURCES: dict[str, str] = {s.name: s.resource for s in SOBJECTS.values()}


def salesforce(document: dict, received_at: datetime) -> list[Change]:
    resource = SALESFORCE_RESOURCES.get(str(document.get("sobject")))
    if resource is None:
        raise Uninterpretable(f"salesforce: sObject {str(document.get('sobject'))[:40]!r} is not synced")
    # The message carries only the fields chosen for it: read the record whole.
    return [Change(resource, None, _iso((document.get("fields") or {}).get("SystemModstamp")) or received_at)]


INTERPRETERS: dict[str, Callable[[dict, datetime], list[Change]]] = {
    "greenhouse": greenhouse, "lever": lever, "ashby": ashby, "pipedrive": pipedrive, "hubspot": hubspot,
    "salesforce": salesforce,
}


def interpret(provider: str, body: bytes, received_at: datetime) -> list[Change]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Uninterpretable("not JSON") from None
    if not isinstance(document, dict):
        raise Uninterpretable("not a JSON object")
    try:
        return INTERPRETERS[provider](document, received_at)
    except (AttributeError, TypeError) as exc:  # a field of an unexpected type
        raise Uninterpretable(f"{provider}: unexpected event shape ({type(exc).__name__})") from None
