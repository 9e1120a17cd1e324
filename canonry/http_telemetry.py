"""Telemetry of the HTTP kit: calls, retries, 429s and latency per endpoint template (ids replaced by
`{id}`), by status and attempt number, and every error met. The pipeline writes it to `ops.api_calls`."""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from canonry import tracing
from canonry.errors import CanonryError

_ID_SEGMENT = re.compile(r"/(\d+|[0-9a-f]{8}-[0-9a-f-]{27,}|[A-Za-z0-9]{15}|[A-Za-z0-9]{18})(?=/|$)")

def endpoint_template(url: str) -> str:
    """`/crm/v3/objects/contacts/123` -> `/crm/v3/objects/contacts/{id}` (telemetry without ids)."""
    return _ID_SEGMENT.sub("/{id}", urlsplit(url).path) or "/"


@dataclass
class CallStats:
    calls: int = 0
    retries: int = 0
    throttled: int = 0
    errors: int = 0
    latency_ms: float = 0.0
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class AttemptStats:
    """Calls of one (method, endpoint template, status, attempt number)."""

    calls: int = 0
    latency_ms: float = 0.0
    latency_max_ms: float = 0.0
    throttled: int = 0


@dataclass
class ErrorEvent:
    error_class: str
    endpoint: str
    status: int | None
    message: str
    retried: bool
    at: float = field(default_factory=time.time)


@dataclass
class Telemetry:
    """Per-run counters keyed by endpoint template (and by status and attempt number), plus every
    error met (retried or not) with its class."""

    by_endpoint: dict[tuple[str, str], CallStats] = field(default_factory=lambda: defaultdict(CallStats))
    by_attempt: dict[tuple[str, str, int, int], AttemptStats] = field(
        default_factory=lambda: defaultdict(AttemptStats))
    error_events: list[ErrorEvent] = field(default_factory=list)
    max_error_events: int = 500
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, method: str, template: str, status: int | None, latency_ms: float, attempt: int) -> None:
        tracing.attempt(status, attempt, latency_ms)
        with self.lock:
            stats = self.by_endpoint[(method, template)]
            stats.calls += 1
            stats.latency_ms += latency_ms
            if attempt > 1:
                stats.retries += 1
            if status == 429:
                stats.throttled += 1
            if status is None or status >= 400:
                stats.errors += 1
            stats.statuses[status or 0] += 1
            detail = self.by_attempt[(method, template, status or 0, attempt)]
            detail.calls += 1
            if status == 429:
                detail.throttled += 1
            detail.latency_ms += latency_ms
            detail.latency_max_ms = max(detail.latency_max_ms, latency_ms)

    def throttled_answer(self, method: str, template: str, status: int, attempt: int) -> None:
        """A non-429 answer the classifier called `rate_limited` (Salesforce's 403 REQUEST_LIMIT_EXCEEDED)."""
        if status == 429:
            return
        with self.lock:
            self.by_endpoint[(method, template)].throttled += 1
            self.by_attempt[(method, template, status, attempt)].throttled += 1

    def error(self, error: CanonryError, retried: bool) -> None:
        with self.lock:
            if len(self.error_events) < self.max_error_events:
                self.error_events.append(ErrorEvent(error.error_class.value, error.endpoint or "", error.status,
                                                    error.detail[:300], retried))

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.by_endpoint.values())

    @property
    def retries(self) -> int:
        return sum(s.retries for s in self.by_endpoint.values())

    @property
    def throttled(self) -> int:
        return sum(s.throttled for s in self.by_endpoint.values())

