"""Salesforce Outbound Messages: SOAP `notifications` from the configured org, journaled one JSON event
per `Notification` ({sobject, fields}); the message carries only the fields chosen for it, so an event
means "fetch"."""

from __future__ import annotations

import hmac
import xml.etree.ElementTree as ElementTree
from datetime import datetime

import orjson

from canonry.webhooks.contract import (
    Change,
    Delivery,
    IntakeEvent,
    Refused,
    Settings,
    Uninterpretable,
    parse_iso,
)
from sources.salesforce.settings import SOBJECTS

OUTBOUND_NS = "{http://soap.sforce.com/2005/09/outbound}"
SOAP_ACK = (b'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            b'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>'
            b'</notificationsResponse></soapenv:Body></soapenv:Envelope>')
ACK = (SOAP_ACK, "text/xml; charset=utf-8")
RESOURCES: dict[str, str] = {s.name: s.resource for s in SOBJECTS.values()}


def verify(delivery: Delivery, settings: Settings) -> list[IntakeEvent]:
    """No signature exists: the org id and the endpoint's secrecy/TLS are the check."""
    if b"<!DOCTYPE" in delivery.body.upper() or b"<!ENTITY" in delivery.body.upper():
        raise Refused(400, "xml_doctype")  # no DTDs: entity expansion bombs stop here
    try:
        root = ElementTree.fromstring(delivery.body)
    except ElementTree.ParseError:
        raise Refused(400, "malformed_xml") from None
    notifications = root.find(f".//{OUTBOUND_NS}notifications")
    if notifications is None:
        raise Refused(400, "not_an_outbound_message")
    org = (notifications.findtext(f"{OUTBOUND_NS}OrganizationId") or "").strip()
    expected = settings.organization_id or ""
    # 15- and 18-character forms of the same id share their first 15 characters.
    if not org or not hmac.compare_digest(org[:15].encode(), expected[:15].encode()):
        raise Refused(403, "wrong_organization")
    events = []
    for notification in notifications.findall(f"{OUTBOUND_NS}Notification"):
        notification_id = notification.findtext(f"{OUTBOUND_NS}Id")
        sobject = notification.find(f"{OUTBOUND_NS}sObject")
        if not notification_id or sobject is None:
            raise Refused(400, "not_an_outbound_message")
        kind = sobject.get("{http://www.w3.org/2001/XMLSchema-instance}type", "")
        fields = {child.tag.rpartition("}")[2]: child.text for child in sobject}
        events.append(IntakeEvent(notification_id.strip(), None, orjson.dumps(
            {"sobject": kind.rpartition(":")[2], "fields": fields})))
    return events


def interpret(document: dict, received_at: datetime) -> list[Change]:
    resource = RESOURCES.get(str(document.get("sobject")))
    if resource is None:
        raise Uninterpretable(f"salesforce: sObject {str(document.get('sobject'))[:40]!r} is not synced")
    # The message carries only the fields chosen for it: read the record whole.
    return [Change(resource, None, parse_iso((document.get("fields") or {}).get("SystemModstamp")) or received_at)]
