"""Delivering alert events (an alert firing or resolved) to a JSON webhook and to email over SMTP.

Each delivery is tried `ATTEMPTS` times with a short back-off; what still failed is kept in
`ops.alert_deliveries` (delivered = false) and tried again at the next evaluations, up to
`MAX_TOTAL_ATTEMPTS`. A delivery failure never raises: the pipeline that evaluated the rules carries on.
No secret reaches a payload or a row: the destination is recorded by kind and host only.
"""

from __future__ import annotations

import json
import logging
import smtplib
import time
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import urlsplit

import requests

from canonry.alerting.rules import Destination, EmailDestination, WebhookDestination
from canonry.secrets import redact, register_secret, resolve_secret

log = logging.getLogger("canonry.alerting")
ATTEMPTS = 3
BACKOFF_S = (0.2, 0.5)
MAX_TOTAL_ATTEMPTS = 12


@dataclass(frozen=True)
class AlertEvent:
    """What is sent: one alert, firing or resolved."""

    alert_id: str
    event: str  # firing | resolved
    rule_id: str
    connection_id: str | None
    severity: str
    message: str
    error_class: str | None
    runbook: str | None

    def title(self) -> str:
        where = f" {self.connection_id}" if self.connection_id else ""
        if self.event == "resolved":
            return f"[resolved] {self.rule_id}{where}: {self.message}"
        return f"[{self.severity}] {self.rule_id}{where}: {self.message}"

    def text(self) -> str:
        lines = [self.title()]
        if self.error_class:
            lines.append(f"error class: {self.error_class}")
        if self.runbook and self.event == "firing":
            lines.append(f"runbook: {self.runbook}")
        lines.append(f"alert id: {self.alert_id}")
        return "\n".join(lines)

    def payload(self) -> dict:
        """Slack-compatible (`text`), with the structured alert alongside for generic receivers."""
        return {"text": redact(self.text()), "alert": {k: redact(v) if isinstance(v, str) else v
                                                       for k, v in self.__dict__.items()}}


def destination_label(index: int, destination: Destination) -> str:
    """How a destination is named in ops and logs: kind and host, never a path, user or query."""
    if isinstance(destination, WebhookDestination):
        parts = urlsplit(destination.url)
        return f"webhook#{index} {parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"
    return f"email#{index} {destination.host}:{destination.port}"


def send_webhook(destination: WebhookDestination, event: AlertEvent) -> None:
    # A webhook's path is often its credential (Slack's /services/T…/B…/…): masked wherever it shows up.
    register_secret(urlsplit(destination.url).path)
    response = requests.post(destination.url, data=json.dumps(event.payload()), timeout=destination.timeout_s,
                             headers={"Content-Type": "application/json"}, allow_redirects=False)
    if response.status_code >= 300:
        raise RuntimeError(f"webhook answered HTTP {response.status_code}")


def send_email(destination: EmailDestination, event: AlertEvent) -> None:
    message = EmailMessage()
    message["Subject"] = f"canonry alert: {event.title()}"[:200]
    message["From"] = destination.sender
    message["To"] = ", ".join(destination.to)
    message.set_content(redact(event.text()))
    with smtplib.SMTP(destination.host, destination.port, timeout=destination.timeout_s) as smtp:
        if destination.starttls:
            smtp.starttls()
        if destination.username and destination.password:
            password = resolve_secret(destination.password)
            register_secret(password)
            smtp.login(destination.username, password)
        smtp.send_message(message)


SENDERS = {WebhookDestination: send_webhook, EmailDestination: send_email}


def deliver(destination: Destination, event: AlertEvent, attempts: int = ATTEMPTS) -> tuple[int, str | None]:
    """Send with retries; (attempts made, None) on success or (attempts made, the last error, redacted)."""
    error = None
    for attempt in range(1, attempts + 1):
        try:
            SENDERS[type(destination)](destination, event)
            return attempt, None
        except Exception as exc:  # noqa: BLE001 - any failure of a receiver is retried, never raised
            error = redact(f"{type(exc).__name__}: {exc}")[:500]
            log.warning("alert delivery failed (attempt %d/%d): %s", attempt, attempts, error)
            if attempt < attempts:
                time.sleep(BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)])
    return attempts, error
