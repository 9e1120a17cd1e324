"""The webhook contract between the intake (server, journal, drain) and each provider's adapter.

A provider that takes webhooks has `sources/<slug>/webhooks.py` (its spec names a `webhook` scheme) with

* `verify(delivery: Delivery, settings: Settings) -> list[IntakeEvent]`: authenticate the delivery over
  the raw bytes as received (`hmac.compare_digest`, never a re-serialisation) and split it into the events
  to journal; raise `Refused` otherwise. Refusal reasons are short codes: logged and counted, never sent
  back (a 401 says "unauthorized", nothing more).
* `interpret(document: dict, received_at: datetime) -> list[Change]`: what one journaled event means for
  raw (a delete, a full record, or "fetch": read what changed through an incremental sync); raise
  `Uninterpretable` for an event it does not understand (dead-lettered with the reason).
* optionally `ACK = (body, media type)`: the answer the provider expects to an accepted delivery.
* optionally `register(connection, url: str, key: str) -> Registration`: subscribe `url` through the
  provider's API with the connection's API key (`canonry webhooks register`); raise `RegistrationRefused`
  with what went wrong. A provider without it has a UI step instead (`WebhookSpec.ui_step`).

This module is kit: sources import it; it imports no source.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

MAX_JSON_DEPTH = 32   # deeper documents are refused (JSON bombs); provider payloads are shallow
JSON_ACK = (b'{"ok":true}', "application/json")


class Refused(Exception):
    """A delivery refused: `status` for the provider (4xx in its no-retry set), `reason` for our log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Registration:
    """What `register` subscribed at the provider: its webhook ids, and a note for the user (never a secret)."""

    provider: str
    webhook_ids: list[str]
    note: str = ""


class RegistrationRefused(Exception):
    """The provider refused a subscription (`what` answered HTTP `status`), or the connection lacks a setting."""


class Uninterpretable(Exception):
    """The event cannot be applied (unknown type, missing id): dead-lettered with this reason."""


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


# -- for verifiers ----------------------------------------------------------------------------------
def body_hash(body: bytes) -> str:
    """An event id for providers that send none: the body's hash (a retry resends the same bytes)."""
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


def require_secret(settings: Settings) -> str:
    if not settings.secret:
        raise Refused(401, "no_secret_configured")
    return settings.secret


def ascii_safe(check: Callable[..., bool], *args: object) -> bool:
    """A str-comparing check refuses non-ASCII input (compare_digest raises TypeError on it)."""
    try:
        return check(*args)
    except TypeError:
        return False


# -- for interpreters -------------------------------------------------------------------------------
def from_epoch_ms(value: object) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, UTC) if isinstance(value, int | float) else None


def parse_iso(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("+0000", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def record_id(value: object, what: str) -> str:
    if value is None or value == "":
        raise Uninterpretable(f"{what}: no record id")
    return str(value)
