"""Webhook deliveries of the provider sandboxes (HubSpot, Pipedrive, Salesforce, Lever, Ashby), with the
providers' retry behaviour: retry on a non-2xx answer or a network error with exponential back-off, give up
after the provider's count. Back-off is compressed (the real ones start at minutes) so a test sees retries in
seconds.

HubSpot v3 (providers.md §1.8): a JSON array of events, `X-HubSpot-Signature-v3` over METHOD + URI + body
+ timestamp (re-signed per attempt: the timestamp is the attempt's), up to 10 retries; 400/401/403/404/405
stop them. Pipedrive webhooks v2 (§6): one `{meta, data, previous}` per change, HTTP Basic credentials,
`meta.attempt` counts the attempts. Salesforce Outbound Messages (§2.3): SOAP `notifications` with the org
id and one `Notification` per record (up to 100), retried until acknowledged (for up to 24 hours there).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from xml.sax.saxutils import escape

import requests

HUBSPOT_NO_RETRY = (400, 401, 403, 404, 405)
HUBSPOT_ATTEMPTS = 11          # the first delivery and 10 retries
PIPEDRIVE_ATTEMPTS = 4         # (the exact count is not published: §9 gaps)
SALESFORCE_ATTEMPTS = 8
# Ashby (developers.ashbyhq.com/docs/retries): at most 10 attempts, exponential back-off; these statuses stop them.
ASHBY_ATTEMPTS = 10
ASHBY_NO_RETRY = (401, 403, 404, 405, 410)
FIRST_DELAY_S = 0.2


def sign_webhook_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot's side of `X-HubSpot-Signature-v3` (the sandbox is the provider: it signs, it imports no
    consumer code; sources/hubspot/helpers.py verifies)."""
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(client_secret.encode(), message, hashlib.sha256).digest()).decode()


class WebhookSender:
    """Background deliveries; `deliveries` records each one's final status and attempt count."""

    def __init__(self, name: str, attempts: int, no_retry: tuple[int, ...] = ()) -> None:
        self.name, self.attempts, self.no_retry = name, attempts, no_retry
        self.deliveries: list[dict] = []
        self.lock = threading.Lock()

    def send(self, url: str, request_for_attempt: Callable[[int], tuple[bytes, dict[str, str]]],
             summary: dict) -> dict:
        delivery = {**summary, "url": url, "status": None, "attempts": 0}
        with self.lock:
            self.deliveries.append(delivery)

        def deliver() -> None:
            for attempt in range(self.attempts):
                body, headers = request_for_attempt(attempt)
                delivery["attempts"] = attempt + 1
                try:
                    status = requests.post(url, data=body, headers=headers, timeout=5).status_code
                except requests.RequestException as exc:
                    status = f"failed: {type(exc).__name__}"
                delivery["status"] = status
                if isinstance(status, int) and (status < 300 or status in self.no_retry):
                    return
                time.sleep(min(FIRST_DELAY_S * 2 ** attempt, 5))

        threading.Thread(target=deliver, name=f"{self.name}-webhook", daemon=True).start()
        return delivery


def hubspot_batch(sender: WebhookSender, url: str, client_secret: str, events: list[dict]) -> dict:
    """One signed v3 delivery of `events` (each with its eventId); `attemptNumber` follows the attempt."""

    def request(attempt: int) -> tuple[bytes, dict[str, str]]:
        body = json.dumps([{**e, "attemptNumber": attempt} for e in events], separators=(",", ":")).encode()
        stamp = str(int(time.time() * 1000))
        return body, {"Content-Type": "application/json", "X-HubSpot-Signature-Version": "v3",
                      "X-HubSpot-Signature-v3": sign_webhook_v3(client_secret, "POST", url, body, stamp),
                      "X-HubSpot-Request-Timestamp": stamp}

    return sender.send(url, request, {"events": [e["eventId"] for e in events]})


def pipedrive_event(sender: WebhookSender, url: str, user: str, password: str, *, action: str, entity: str,
                    entity_id: str, data: dict | None, previous: dict | None) -> dict:
    """One v2 delivery (`action` create | change | delete) with HTTP Basic credentials."""
    meta = {"action": action, "entity": entity, "entity_id": str(entity_id), "id": str(uuid.uuid4()),
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "version": "2.0",
            "change_source": "api", "type": "general"}
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def request(attempt: int) -> tuple[bytes, dict[str, str]]:
        body = {"meta": {**meta, "attempt": attempt + 1}, "data": data, "previous": previous}
        return json.dumps(body).encode(), {"Content-Type": "application/json", "Authorization": auth}

    return sender.send(url, request, {"id": meta["id"], "action": action, "entity": entity})


def salesforce_outbound(sender: WebhookSender, url: str, org_id: str, sobject: str, records: list[dict]) -> dict:
    """One Outbound Message: a SOAP `notifications` envelope, a `Notification` (own id) per record, each
    record's scalar fields as `sf:` elements (null ones `xsi:nil`)."""
    notifications = []
    for record in records[:100]:
        fields = "".join(f'<sf:{k} xsi:nil="true"/>' if v is None else f"<sf:{k}>{escape(str(v))}</sf:{k}>"
                         for k, v in record.items() if not isinstance(v, dict | list))
        notifications.append(f"<Notification><Id>04l{secrets.token_hex(8)[:15]}</Id>"
                             f'<sObject xsi:type="sf:{sobject}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
                             f"{fields}</sObject></Notification>")
    body = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
            '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
            f"<OrganizationId>{org_id}</OrganizationId><ActionId>04k000000000001AAA</ActionId>"
            '<SessionId xsi:nil="true"/>' + "".join(notifications) +
            "</notifications></soapenv:Body></soapenv:Envelope>").encode()
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""', "User-Agent": "Salesforce (sandbox)"}
    return sender.send(url, lambda attempt: (body, headers), {"sobject": sobject, "records": len(records)})
