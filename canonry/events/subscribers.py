"""Subscribers of outbound change events: stored in `<data dir>/events/subscribers.json`, their signing
secrets in the secret store (`local:events-<subscriber id>`), never in the file, the warehouse or a log.

The file holds, per subscriber: its tenant, URL, event patterns (`crm.contact.*`, `ats.*.deleted`, `*`),
retry policy (attempts, first back-off) and the *reference* of its secret. It is rewritten atomically under a
file lock, like the API keys (canonry/api/keys.py), so `canonry events subscribe` and the API's
`POST /v1/events/subscribers` can add subscribers while a delivery pass reads the file.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

from canonry.api.keys import TENANT_PATTERN
from canonry.netsafety import check_url, display_url
from canonry.secrets import delete_secret, resolve_secret, store_secret
from canonry.warehouse import data_dir

SECRET_PREFIX = "whsec_"           # Standard Webhooks: base64 of the HMAC key after this prefix
DEFAULT_MAX_ATTEMPTS = 8           # then the delivery is a dead letter
DEFAULT_BACKOFF_SECONDS = 30.0     # first retry after this, doubling: 30 s, 1 m, 2 m, … (8 attempts: ~1 h)
MAX_BACKOFF_SECONDS = 6 * 3600.0   # no single wait longer than this
PATTERN = re.compile(r"^(\*|[a-z]+)(\.(\*|[a-z_]+))?(\.(\*|created|updated|deleted))?$")


class SubscriberError(ValueError):
    """A subscriber operation that cannot be done: what, and what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message} — {hint}")


@dataclass
class Subscriber:
    subscriber_id: str
    tenant: str
    url: str
    events: list[str]
    max_attempts: int
    backoff_seconds: float
    secret_ref: str
    created_at: str
    allow_private_network: bool = False
    label: str = field(default="")

    def wants(self, event_type: str) -> bool:
        return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in self.events)

    def secret(self) -> str:
        """The signing secret, resolved when a request is signed (and registered for redaction)."""
        return resolve_secret(self.secret_ref)

    def public(self) -> dict:
        """What may be shown (CLI, API): everything but the secret's reference; the URL's query masked."""
        shown = {k: v for k, v in asdict(self).items() if k != "secret_ref"}
        shown["url"] = display_url(self.url)
        return shown


def subscribers_file() -> Path:
    return data_dir() / "events" / "subscribers.json"


def load_subscribers(path: Path | None = None) -> dict[str, Subscriber]:
    path = path or subscribers_file()
    if not path.exists():
        return {}
    return {e["subscriber_id"]: Subscriber(**e) for e in json.loads(path.read_text())["subscribers"]}


def _save(subscribers: dict[str, Subscriber], path: Path) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"subscribers": [asdict(s) for s in subscribers.values()]}, indent=2))
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def _lock(path: Path) -> FileLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock", timeout=30)


def _check(tenant: str, url: str, events: list[str], max_attempts: int, backoff_seconds: float,
           allow_private_network: bool) -> None:
    if not TENANT_PATTERN.match(tenant):
        raise SubscriberError(f"tenant {tenant!r} is not a tenant id",
                              "use the `tenant` of a connection in the connections file (letters, digits, _ . -)")
    problems = check_url(url, allow_private=allow_private_network)
    if problems:
        raise SubscriberError(f"url {display_url(url)}: {problems[0].message}", problems[0].hint)
    bad = [p for p in events if not PATTERN.match(p)]
    if not events or bad:
        raise SubscriberError(f"event pattern(s) {', '.join(map(repr, bad)) or '(none)'} not understood",
                              "write <family>.<entity>.<action> with * for any part, e.g. crm.contact.*, "
                              "ats.*.deleted or *")
    if not 1 <= max_attempts <= 50:
        raise SubscriberError(f"max attempts {max_attempts} out of range", "use 1..50 (default 8)")
    if not 0.05 <= backoff_seconds <= MAX_BACKOFF_SECONDS:
        raise SubscriberError(f"back-off {backoff_seconds}s out of range",
                              f"use 0.05..{MAX_BACKOFF_SECONDS:.0f} seconds (default 30)")


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def add_subscriber(tenant: str, url: str, events: list[str], *, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                   backoff_seconds: float = DEFAULT_BACKOFF_SECONDS, allow_private_network: bool = False,
                   label: str = "") -> tuple[Subscriber, str]:
    """(the stored subscriber, its signing secret — shown once; the store keeps it, the file its reference)."""
    _check(tenant, url, events, max_attempts, backoff_seconds, allow_private_network)
    subscriber_id = "sub_" + secrets.token_hex(6)
    secret = new_secret()
    reference = f"local:events-{subscriber_id}"
    store_secret(reference, secret)
    entry = Subscriber(subscriber_id, tenant, url, sorted(set(events)), max_attempts, float(backoff_seconds),
                       reference, datetime.now(UTC).isoformat(timespec="seconds"), allow_private_network, label)
    path = subscribers_file()
    with _lock(path):
        current = load_subscribers(path)
        current[subscriber_id] = entry
        _save(current, path)
    return entry, secret


def remove_subscriber(subscriber_id: str, tenant: str | None = None) -> Subscriber:
    """Remove a subscriber (and its secret). With `tenant`, only that tenant's (the API's view)."""
    path = subscribers_file()
    with _lock(path):
        current = load_subscribers(path)
        entry = current.get(subscriber_id)
        if entry is None or (tenant is not None and entry.tenant != tenant):
            raise SubscriberError(f"no subscriber {subscriber_id!r}", "`canonry events list` shows the ids")
        del current[subscriber_id]
        _save(current, path)
    delete_secret(entry.secret_ref)
    return entry
