"""Verify a delivery with its provider's adapter (`sources/<slug>/webhooks.py`, see `contract`)."""

from __future__ import annotations

from canonry import providers
from canonry.webhooks.contract import JSON_ACK, Delivery, IntakeEvent, Refused, Settings


def adapter(provider: str):
    """The provider's webhook module; `Refused(404)` for a provider whose spec names no webhook scheme."""
    if not providers.is_provider(provider) or providers.spec(provider).webhook is None:
        raise Refused(404, "no_webhooks_for_provider")
    return providers.source_module(provider, "webhooks")


def verify(delivery: Delivery, settings: Settings) -> list[IntakeEvent]:
    """The events to journal from an authenticated delivery to `settings`' connection, or `Refused`."""
    return adapter(settings.provider).verify(delivery, settings)


def acknowledgement(provider: str) -> tuple[bytes, str]:
    """What the provider expects as the answer to an accepted delivery: (body, media type)."""
    return getattr(adapter(provider), "ACK", JSON_ACK)
