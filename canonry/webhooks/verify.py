"""Each provider's webhook authentication, and the split of a verified delivery into journal events.

A verifier gets the delivery (method, URL, headers, raw body) and the connection's resolved settings; it
raises `Refused` or returns the events to journal. Signatures are compared with `hmac.compare_digest`
over the raw bytes as received (never a re-serialisation). Refusal reasons are short codes: they are
logged and counted, never sent back (a 401 says "unauthorized", nothing more).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from sources.ashby.helpers import verify_webhook_signature as ashby_signature_ok
from sources.greenhouse.helpers import verify_webhook_signature as greenhouse_signature_ok
from sources.hubspot.helpers import verify_webhook_v3 as hubspot_signature_ok
from sources.lever.helpers import verify_webhook as lever_signature_ok

HUBSPOT_WINDOW_MS = 5 * 60 * 1000   # HubSpot v3: reject a request timestamp older than 5 minutes
MAX_JSON_DEPTH = 32                 # deeper documents are refused (JSON bombs); provider payloads are shallow
SALESFORCE_OUTBOUND_NS = "{http://soap.sforce.com/2005/09/outbound}"
SOAP_ACK = (b'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            b'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>'
            b'</notificationsResponse></soapenv:Body></soapenv:Envelope>')


class Refused(Exception):
    """A delivery refused: `status` for the provider (4xx in its no-retry set), `reason` for our log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Delivery:
    method: str
    url: str                     # the full URL as requested (HubSpot signs it)
    headers: Mapping[str, str]   # case-insensitive (Starlette's Headers)
    body: bytes
    received_ms: int


@dataclass(frozen=True)
class Settings:
    """A connection's webhook settings, secret resolved (kept in memory only, registered for redaction)."""

    connection_id: str
    provider: str
    secret: str | None
    username: str | None
    organization_id: str | None


@dataclass(frozen=True)
class IntakeEvent:
    event_id: str                # the provider's id for the event (dedupe key within a connection)
    occurred_ms: int | None      # when it happened at the provider, when the provider says
    body: bytes                  # one event, JSON


def _sha(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _depth_ok(document: object, limit: int = MAX_JSON_DEPTH) -> bool:
    stack = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return True


def parse_json(body: bytes) -> object:
    """The body as JSON, or Refused(400): malformed, or nested deeper than MAX_JSON_DEPTH."""
    try:
        document = orjson.loads(body)  # orjson itself refuses nesting beyond 1024 levels
    except orjson.JSONDecodeError:
        raise Refused(400, "malformed_json") from None
    if not _depth_ok(document):
        raise Refused(400, "json_too_deep")
    return document


def _require_secret(settings: Settings) -> str:
    if not settings.secret:
        raise Refused(401, "no_secret_configured")
    return settings.secret


def _ascii_safe(check: Callable[..., bool], *args: object) -> bool:
    """A str-comparing check refuses non-ASCII input (compare_digest raises TypeError on it)."""
    try:
        return check(*args)
    except TypeError:
        return False


# -- providers -------------------------------------------------------------------------------------
def hubspot(delivery: Delivery, settings: Settings) -> list[IntakeEvent]:
    """v3: base64 HMAC-SHA256(client secret, METHOD + URI + body + timestamp), timestamp within 5 min;
    the body is a JSON array of events, each with its own `eventId` and `occurredAt`."""
    timestamp = delivery.headers.get("x-hubspot-request-timestamp", "")
    if not timestamp.isdigit() or abs(delivery.received_ms - int(timestamp)) > HUBSPOT_WINDOW_MS:
        raise Refused(401, "stale_timestamp")
    if not hubspot_signature_ok(_require_secret(settings), delivery.method, delivery.url, delivery.body,
                                timestamp, delivery.headers.get("x-hubspot-signature-v3")):
        raise Refused(401, "bad_signature")
    events = parse_json(delivery.body)
    if not isinstance(events, list) or not all(isinstance(e, dict) and "eventId" in e for e in events):
        raise Refused(400, "not_an_event_array")
    return [IntakeEvent(str(e["eventId"]), e.get("occurredAt") if isinstance(e.get("occurredAt"), int) else None,
                        orjson.dumps(e)) for e in events]


def greenhouse(delivery: Delivery, settings: Settings) -> list[IntakeEvent]:
    """`Signature: sha256 <hex HMAC-SHA256(secret, raw body)>`; `Greenhouse-Event-ID` per delivery."""
    if not greenhouse_signature_ok(_require_secret(settings), delivery.body, delivery.headers.get("signature")):
        raise Refused(401, "bad_signature")
    document = parse_json(delivery.body)
    if not isinstance(document, dict) or "action" not in document:
        raise Refused(400, "not_an_event")
    return [IntakeEvent(delivery.headers.get("greenhouse-event-id") or _sha(delivery.body), None, delivery.body)]


def lever(delivery: Delivery, settings: Settings) -> list[IntakeEvent]:
    """Body `signature` = hex HMAC-SHA256(signature token, token + triggeredAt); the token is unique per
    event (a retry resends it), so it is the dedupe key."""
    document = parse_json(delivery.body)
    if not isinstance(document, dict):
        raise Refused(400, "not_an_event")
    if not _ascii_safe(lever_signature_ok, document, _require_secret(settings)):
        raise Refused(401, "bad_signature")
    triggered = document.get("triggeredAt")
    return [IntakeEvent(str(document["token"]), triggered if isinstance(triggered, int) else None, delivery.body)]


def ashby(delivery: Delivery, settings: Settings) -> list[IntakeEvent]:
    """`Ashby-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`; no event id: the body's hash."""
    if not _ascii_safe(ashby_signature_ok, _require_secret(settings), delivery.body,
                       delivery.headers.get("ashby-signature")):
        raise Refused(401, "bad_signature")
    document = parse_json(delivery.body)
    if not isinstance(document, dict) or "action" not in document:
        raise Refused(400, "not_an_event")
    return [IntakeEvent(_sha(delivery.body), None, delivery.body)]


def pipedrive(delivery: Delivery, settings: Settings) -> list[IntakeEvent]:
    """No signature: the HTTP Basic credentials configured on the webhook. v2 `meta` carries the event."""
    header = delivery.headers.get("authorization", "")
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":") \
            if header[:6].lower() == "basic " else ("", "", "")
    except (ValueError, UnicodeDecodeError):
        user, password = "", ""
    user_ok = hmac.compare_digest(user.encode(), (settings.username or "").encode())
    password_ok = hmac.compare_digest(password.encode(), _require_secret(settings).encode())
    if not (user_ok and password_ok):
        raise Refused(401, "bad_basic_auth")
    document = parse_json(delivery.body)
    meta = document.get("meta") if isinstance(document, dict) else None
    if not isinstance(meta, dict) or "action" not in meta or "entity" not in meta:
        raise Refused(400, "not_an_event")
    # meta.id is the event's id; without it, the change itself (a retry repeats it, `attempt` aside).
    event_id = meta.get("id") or f"{meta['entity']}:{meta.get('entity_id')}:{meta['action']}:{meta.get('timestamp')}"
    return [IntakeEvent(str(event_id), None, delivery.body)]


def salesforce(delivery: Delivery, settings: Settings) -> list[IntakeEvent]:
    """Outbound Messages: SOAP `notifications` from the configured org (no signature exists; the org id
    and the endpoint's secrecy/TLS are the check). Each `Notification` becomes one JSON event."""
    if b"<!DOCTYPE" in delivery.body.upper() or b"<!ENTITY" in delivery.body.upper():
        raise Refused(400, "xml_doctype")  # no DTDs: entity expansion bombs stop here
    try:
        root = ElementTree.fromstring(delivery.body)
    except ElementTree.ParseError:
        raise Refused(400, "malformed_xml") from None
    notifications = root.find(f".//{SALESFORCE_OUTBOUND_NS}notifications")
    if notifications is None:
        raise Refused(400, "not_an_outbound_message")
    org = (notifications.findtext(f"{SALESFORCE_OUTBOUND_NS}OrganizationId") or "").strip()
    expected = settings.organization_id or ""
    # 15- and 18-character forms of the same id share their first 15 characters.
    if not org or not hmac.compare_digest(org[:15].encode(), expected[:15].encode()):
        raise Refused(403, "wrong_organization")
    events = []
    for notification in notifications.findall(f"{SALESFORCE_OUTBOUND_NS}Notification"):
        notification_id = notification.findtext(f"{SALESFORCE_OUTBOUND_NS}Id")
        sobject = notification.find(f"{SALESFORCE_OUTBOUND_NS}sObject")
        if not notification_id or sobject is None:
            raise Refused(400, "not_an_outbound_message")
        kind = sobject.get("{http://www.w3.org/2001/XMLSchema-instance}type", "")
        fields = {child.tag.rpartition("}")[2]: child.text for child in sobject}
        events.append(IntakeEvent(notification_id.strip(), None, orjson.dumps(
            {"sobject": kind.rpartition(":")[2], "fields": fields})))
    return events


VERIFIERS: dict[str, Callable[[Delivery, Settings], list[IntakeEvent]]] = {
    "hubspot": hubspot, "greenhouse": greenhouse, "lever": lever, "ashby": ashby, "pipedrive": pipedrive,
    "salesforce": salesforce,
}
# What a provider expects as the answer to an accepted delivery.
ACK: dict[str, tuple[bytes, str]] = {"salesforce": (SOAP_ACK, "text/xml; charset=utf-8")}
