"""Webhook test helpers: `canonry webhooks serve` as a real subprocess, and deliveries signed like each
provider signs them (with the same helpers the verifier uses, from sources/*/helpers.py)."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

from sources.ashby.helpers import sign_webhook as ashby_sign
from sources.greenhouse.helpers import sign_webhook as greenhouse_sign
from sources.hubspot.helpers import sign_webhook_v3 as hubspot_sign
from sources.lever.helpers import webhook_signature as lever_sign

SECRETS = {  # test-only webhook secrets, put in the environment (env:CANONRY_TEST_WEBHOOK_<PROVIDER>)
    "greenhouse": "sandbox-greenhouse-webhook-secret", "ashby": "sandbox-ashby-webhook-secret",
    "lever": "sandbox-lever-webhook-signature-token", "hubspot": "sandbox-hubspot-client-secret",
    "pipedrive": "sandbox-pipedrive-webhook-password",
}
PIPEDRIVE_USER = "canonry"
SALESFORCE_ORG = "00D5g000004CanonEAA"


def webhook_block(provider: str) -> dict:
    if provider == "salesforce":
        return {"organization_id": SALESFORCE_ORG}
    block = {"secret": f"env:CANONRY_TEST_WEBHOOK_{provider.upper()}"}
    if provider == "pipedrive":
        block["username"] = PIPEDRIVE_USER
    return block


def set_secret_env(monkeypatch) -> None:
    for provider, secret in SECRETS.items():
        monkeypatch.setenv(f"CANONRY_TEST_WEBHOOK_{provider.upper()}", secret)


class WebhookServer:
    """`canonry webhooks serve` in a subprocess (inherits CANONRY_DATA_DIR and the secrets); port 0: a free
    one, read from the line it prints."""

    def __init__(self, config: Path, max_body: int | None = None, env: dict[str, str] | None = None,
                 port: int = 0) -> None:
        self.config, self.max_body, self.env, self.port = config, max_body, env, port
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> WebhookServer:
        command = [sys.executable, "-m", "canonry.cli", "webhooks", "serve", "--port", str(self.port), "--config",
                   str(self.config)]
        if self.max_body:
            command += ["--max-body", str(self.max_body)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, **(self.env or {})})
        line = self.process.stdout.readline()
        if not line.startswith("listening on "):
            self.process.kill()
            raise RuntimeError(f"webhooks serve did not start: {line}{self.process.stderr.read()}")
        self.url = line.split()[-1]
        return self

    def hook(self, connection_id: str) -> str:
        return f"{self.url}/hooks/{connection_id}"

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> str:
        """A clean stop; returns what the server logged (stderr)."""
        if self.process is None:
            return ""
        if self.process.poll() is None:
            self.process.terminate()
        _, err = self.process.communicate(timeout=15)
        return err


def journal_rows(data_dir: Path) -> list[dict]:
    path = data_dir / "webhooks" / "intake.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(path)
    try:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("select * from events order by seq")]
    finally:
        db.close()


# -- deliveries signed like the providers --------------------------------------------------------------
def post_greenhouse(url: str, document: dict, secret: str = SECRETS["greenhouse"], event_id: str | None = None,
                    signature: str | None = None) -> requests.Response:
    body = json.dumps(document, separators=(",", ":")).encode()
    return requests.post(url, data=body, timeout=10, headers={
        "Content-Type": "application/json", "Signature": signature or greenhouse_sign(secret, body),
        "Greenhouse-Event-ID": event_id or str(uuid.uuid4())})


def post_hubspot(url: str, events: list[dict], secret: str = SECRETS["hubspot"],
                 timestamp_ms: int | None = None) -> requests.Response:
    body = json.dumps(events, separators=(",", ":")).encode()
    stamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    return requests.post(url, data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-HubSpot-Signature-Version": "v3",
        "X-HubSpot-Signature-v3": hubspot_sign(secret, "POST", url, body, stamp),
        "X-HubSpot-Request-Timestamp": stamp})


def hubspot_event(object_id: str, subscription: str = "contact.deletion", event_id: int | None = None) -> dict:
    return {"eventId": event_id or uuid.uuid4().int % 10**9, "subscriptionId": 1, "portalId": 62515, "appId": 1,
            "occurredAt": int(time.time() * 1000), "subscriptionType": subscription, "attemptNumber": 0,
            "objectId": int(object_id), "changeSource": "CRM"}


def lever_body(event: str, data: dict, signature_token: str = SECRETS["lever"], token: str | None = None) -> dict:
    token = token or uuid.uuid4().hex
    triggered = int(time.time() * 1000)
    return {"triggeredAt": triggered, "event": event, "token": token,
            "signature": lever_sign(signature_token, token, triggered), "data": data}


def post_ashby(url: str, document: dict, secret: str = SECRETS["ashby"]) -> requests.Response:
    body = json.dumps(document, separators=(",", ":")).encode()
    return requests.post(url, data=body, timeout=10, headers={"Content-Type": "application/json",
                                                             "Ashby-Signature": ashby_sign(secret, body)})


def post_pipedrive(url: str, document: dict, user: str = PIPEDRIVE_USER,
                   password: str | None = SECRETS["pipedrive"]) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if password is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return requests.post(url, data=json.dumps(document).encode(), headers=headers, timeout=10)


def pipedrive_event(entity: str, entity_id: str, action: str, data: dict | None = None,
                    previous: dict | None = None) -> dict:
    return {"meta": {"action": action, "entity": entity, "entity_id": str(entity_id), "id": str(uuid.uuid4()),
                     "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), "version": "2.0",
                     "attempt": 1, "change_source": "app"},
            "data": data, "previous": previous}


def salesforce_message(org_id: str = SALESFORCE_ORG, sobject: str = "Contact", record_id: str = "003000000000001",
                       notification_id: str | None = None) -> bytes:
    notification_id = notification_id or f"04l{uuid.uuid4().hex[:15]}"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org_id}</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/62.0/00D</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/62.0/00D</PartnerUrl>
   <Notification>
    <Id>{notification_id}</Id>
    <sObject xsi:type="sf:{sobject}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{record_id}</sf:Id>
     <sf:LastName>Example</sf:LastName>
     <sf:SystemModstamp>2026-01-01T00:00:00.000Z</sf:SystemModstamp>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>""".encode()


def post_salesforce(url: str, body: bytes) -> requests.Response:
    return requests.post(url, data=body, timeout=10, headers={"Content-Type": "text/xml; charset=utf-8",
                                                              "SOAPAction": '""'})


def wait_for(condition, timeout: float = 20) -> None:
    """Poll `condition` until true (webhook deliveries arrive in the background)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "webhook deliveries did not arrive"
        time.sleep(0.05)
