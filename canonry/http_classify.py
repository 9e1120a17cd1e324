"""Classification of the HTTP kit: an answer mapped to the error taxonomy of `canonry/errors.py`, the wait
a provider asks for (`Retry-After`, reset headers) and the rate-limit headers that re-seed a budget."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import requests

from canonry.errors import ErrorClass
from canonry.http_budget import RateBudget

Classifier = Callable[[requests.Response], tuple[ErrorClass, str] | None]


def default_classifier(response: requests.Response) -> tuple[ErrorClass, str] | None:
    """Map an HTTP answer to the taxonomy; None means success."""
    status = response.status_code
    if status < 400:
        return None
    message = _error_message(response)
    body = json_or_none(response)
    policy = body.get("policyName") if isinstance(body, dict) else None
    codes = _error_codes(body)
    if status == 429 and policy == "DAILY":
        return ErrorClass.QUOTA_EXHAUSTED, message or "the daily API quota is spent (429 DAILY)"
    if status == 401:
        return ErrorClass.AUTH_EXPIRED, message or "the provider rejected the credentials (401)"
    if status == 403 and "REQUEST_LIMIT_EXCEEDED" in codes:
        return ErrorClass.RATE_LIMITED, message or "request limit exceeded (403 REQUEST_LIMIT_EXCEEDED)"
    if status == 403:
        return ErrorClass.PERMISSION_DENIED, message or "the credential lacks a permission (403)"
    if status == 429:
        return ErrorClass.RATE_LIMITED, message or "rate limited (429)"
    if status >= 500 or status in (408, 423):
        return ErrorClass.TRANSIENT, message or f"provider error {status}"
    return ErrorClass.PROVIDER_CONTRACT, message or f"request rejected with {status}"


def json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_codes(body: Any) -> set[str]:
    items = body if isinstance(body, list) else [body]
    return {str(i.get("errorCode") or i.get("code") or "") for i in items if isinstance(i, dict)}


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "errorInfo"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:300]
            if isinstance(value, dict) and value.get("message"):
                return str(value["message"])[:300]
    return str(body)[:200]


def retry_after_seconds(response: requests.Response) -> float | None:
    """`Retry-After` in seconds (or as an HTTP date); None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def _int_header(headers, *names: str) -> int | None:
    for name in names:
        value = headers.get(name)
        if value is not None:
            try:
                return int(float(value))
            except ValueError:
                continue
    return None


# The spellings of the common rate-limit headers (header names are case-insensitive): `X-RateLimit-*`
# (Greenhouse, Lever, Ashby, Pipedrive), the IETF draft's `RateLimit-*`, and `X-Rate-Limit-*` (Workable).
LIMIT_HEADERS = ("X-RateLimit-Limit", "RateLimit-Limit", "X-Rate-Limit-Limit")
REMAINING_HEADERS = ("X-RateLimit-Remaining", "RateLimit-Remaining", "X-Rate-Limit-Remaining")
RESET_HEADERS = ("X-RateLimit-Reset", "RateLimit-Reset", "X-Rate-Limit-Reset")


def reset_seconds(response: requests.Response) -> float | None:
    """`X-RateLimit-Reset` / `RateLimit-Reset`: an epoch time or a number of seconds from now."""
    value = _int_header(response.headers, *RESET_HEADERS)
    if value is None:
        return None
    now = time.time()
    if value > 1_000_000_000_000:  # epoch milliseconds
        return max(0.0, value / 1000 - now)
    if value > 1_000_000_000:  # epoch seconds
        return max(0.0, value - now)
    return float(value)


_SFORCE_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


def observe_rate_headers(response: requests.Response, budget: RateBudget) -> None:
    """Correct the budget from the rate-limit headers providers send: HubSpot's `X-HubSpot-RateLimit-*`,
    the common `X-RateLimit-*` / `RateLimit-*` / `X-Rate-Limit-*` (LIMIT_HEADERS …), Salesforce's
    `Sforce-Limit-Info: api-usage=used/max` (daily) and Pipedrive's `x-daily-requests-left`."""
    headers = response.headers
    hub_max = _int_header(headers, "X-HubSpot-RateLimit-Max")
    if hub_max is not None:
        interval_ms = _int_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        budget.observe(_int_header(headers, "X-HubSpot-RateLimit-Remaining"), hub_max,
                       interval_ms / 1000 if interval_ms else None)
        daily = _int_header(headers, "X-HubSpot-RateLimit-Daily-Remaining")
        if daily is not None:
            budget.observe_daily(daily)
    else:
        limit = _int_header(headers, *LIMIT_HEADERS)
        remaining = _int_header(headers, *REMAINING_HEADERS)
        if limit is not None or remaining is not None:
            budget.observe(remaining, limit, None)
    info = headers.get("Sforce-Limit-Info")
    if info:
        match = _SFORCE_USAGE.search(info)
        if match:
            budget.observe_daily(int(match.group(2)) - int(match.group(1)))
    daily_left = _int_header(headers, "X-Daily-Requests-Left")
    if daily_left is not None:
        budget.observe_daily(daily_left)

