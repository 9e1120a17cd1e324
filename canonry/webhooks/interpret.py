"""What a journaled event means for raw: per provider (its adapter's `interpret`), a list of `Change`s.

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

from datetime import datetime

import orjson

from canonry.webhooks.contract import Change, Refused, Uninterpretable
from canonry.webhooks.verify import adapter

__all__ = ["Change", "Uninterpretable", "interpret"]


def interpret(provider: str, body: bytes, received_at: datetime) -> list[Change]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Uninterpretable("not JSON") from None
    if not isinstance(document, dict):
        raise Uninterpretable("not a JSON object")
    try:
        module = adapter(provider)
    except Refused:
        raise Uninterpretable(f"{provider}: takes no webhooks") from None
    try:
        return module.interpret(document, received_at)
    except (AttributeError, TypeError) as exc:  # a field of an unexpected type
        raise Uninterpretable(f"{provider}: unexpected event shape ({type(exc).__name__})") from None
