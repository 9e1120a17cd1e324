"""`/v1/events/subscribers`: the read API's door to outbound change events (canonry/events), per tenant.

A key with the `events:manage` scope lists, adds and removes its own tenant's subscribers; another tenant's
subscriber is a 404, as a record is. Adding one answers its signing secret once (201); private-network URLs
are the operator's call (`canonry events subscribe --allow-private-network`), not an API client's.
"""

from __future__ import annotations

from typing import Any

import orjson

from canonry.events.subscribers import (
    DEFAULT_BACKOFF_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    SubscriberError,
    add_subscriber,
    load_subscribers,
    remove_subscriber,
)

FIELDS: dict[str, type | tuple[type, ...]] = {"url": str, "events": list, "max_attempts": int,
                                              "backoff_seconds": (int, float), "label": str}


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.hint = status, code, message, hint


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw or b"null")
    except orjson.JSONDecodeError:
        raise Refused(400, "invalid_body", "the body is not JSON", 'send {"url": "https://…"}') from None
    if not isinstance(body, dict) or "url" not in body:
        raise Refused(400, "invalid_body", "the body must be a JSON object with a `url`",
                      'e.g. {"url": "https://example.com/hook", "events": ["crm.contact.*"]}')
    unknown = sorted(set(body) - set(FIELDS))
    wrong = [k for k, kind in FIELDS.items() if k in body and (not isinstance(body[k], kind)
                                                               or isinstance(body[k], bool))]
    if unknown or wrong:
        raise Refused(400, "invalid_body", f"unknown or mistyped field(s): {', '.join(unknown + wrong)}",
                      f"fields are {', '.join(FIELDS)}")
    if not all(isinstance(p, str) for p in body.get("events", [])):
        raise Refused(400, "invalid_body", "`events` must be a list of patterns", 'e.g. ["crm.contact.*"]')
    return body


def handle(method: str, subscriber_id: str | None, raw: bytes, tenant: str) -> tuple[int, Any]:
    """(status, JSON content or None) of one request of `tenant`'s key."""
    if method == "GET":
        return 200, {"results": [s.public() for s in load_subscribers().values() if s.tenant == tenant]}
    if method == "DELETE":
        try:
            remove_subscriber(subscriber_id or "", tenant=tenant)
        except SubscriberError as exc:
            raise Refused(404, "not_found", str(exc)) from None
        return 204, None
    body = _body(raw)
    try:
        entry, secret = add_subscriber(tenant, body["url"], body.get("events", ["*"]),
                                       max_attempts=body.get("max_attempts", DEFAULT_MAX_ATTEMPTS),
                                       backoff_seconds=float(body.get("backoff_seconds", DEFAULT_BACKOFF_SECONDS)),
                                       label=body.get("label", ""))
    except SubscriberError as exc:
        raise Refused(422, "invalid_subscriber", str(exc)) from None
    return 201, {**entry.public(), "secret": secret}
