"""The one HTTP session factory every source uses.

A `ProviderSession` wraps `requests.Session` with: a per-(provider, connection) rate budget, retries of
`transient` and `rate_limited` answers with exponential back-off and full jitter (with a floor, so
`Retry-After: 0` never hot-loops), classification of every failure into the taxonomy of
`canonry/errors.py`, JSON decoding that turns a malformed body into `provider_contract`, and telemetry
(calls, retries, 429s, latency per endpoint template) that the pipeline writes to `ops.api_calls`.
Credentials are attached by an `auth` callable and never appear in errors or telemetry.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from canonry.errors import CanonryError, ErrorClass

# Published limits used to seed the budget: (requests, per seconds).
PUBLISHED_LIMITS: dict[str, tuple[int, float]] = {
    "hubspot": (100, 10.0),
    "salesforce": (25, 1.0),
    "pipedrive": (80, 2.0),
    "greenhouse": (50, 10.0),
    "lever": (10, 1.0),
    "ashby": (15, 1.0),
}

RETRY_FLOOR_SECONDS = 0.05
_ID_SEGMENT = re.compile(r"/(\d+|[0-9a-f]{8}-[0-9a-f-]{27,}|[A-Za-z0-9]{15}|[A-Za-z0-9]{18})(?=/|$)")


def endpoint_template(url: str) -> str:
    """`/crm/v3/objects/contacts/123` -> `/crm/v3/objects/contacts/{id}` (telemetry without ids)."""
    return _ID_SEGMENT.sub("/{id}", urlsplit(url).path) or "/"


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 20.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Full-jitter exponential back-off, never below the floor nor below Retry-After."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        jittered = rng.uniform(0, ceiling)
        if retry_after is not None:
            return max(RETRY_FLOOR_SECONDS, min(self.max_delay * 3, retry_after) + jittered * 0.1)
        return max(RETRY_FLOOR_SECONDS, jittered)


class RateBudget:
    """A rolling-window budget shared by every session of one (provider, connection).

    Providers count requests in rolling windows (HubSpot: 100 per 10 s), so a token bucket with a
    full initial burst would overshoot by up to 2x in the first window. This keeps the send times of
    the last `limit` requests and waits until the oldest leaves the window. Responses correct it:
    a lower `remaining` than we think pauses us, a 429 pauses us for the back-off.
    """

    def __init__(self, limit: int, interval: float) -> None:
        self.limit, self.interval = limit, interval
        self.sent: deque[float] = deque()
        self.blocked_until = 0.0
        self.lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a request slot; returns the seconds waited."""
        waited = 0.0
        while True:
            with self.lock:
                now = time.monotonic()
                while self.sent and now - self.sent[0] >= self.interval:
                    self.sent.popleft()
                pause = max(0.0, self.blocked_until - now)
                if pause == 0 and len(self.sent) < self.limit:
                    self.sent.append(now)
                    return waited
                if pause == 0:
                    pause = self.interval - (now - self.sent[0]) + 0.001
            time.sleep(pause)
            waited += pause

    def observe(self, remaining: int | None, limit: int | None, interval: float | None) -> None:
        """Correct the window from what the provider says is left in it."""
        with self.lock:
            if limit and interval:
                self.limit, self.interval = limit, interval
            if remaining is not None and remaining <= 0:
                self.blocked_until = max(self.blocked_until, time.monotonic() + self.interval / max(1, self.limit))

    def pause(self, seconds: float) -> None:
        with self.lock:
            self.blocked_until = max(self.blocked_until, time.monotonic() + seconds)


_BUDGETS: dict[tuple[str, str], RateBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(provider: str, connection_id: str, limit: tuple[int, float] | None = None) -> RateBudget:
    with _BUDGETS_LOCK:
        key = (provider, connection_id)
        if key not in _BUDGETS:
            requests_, seconds = limit or PUBLISHED_LIMITS.get(provider, (10, 1.0))
            _BUDGETS[key] = RateBudget(requests_, seconds)
        return _BUDGETS[key]


@dataclass
class CallStats:
    calls: int = 0
    retries: int = 0
    throttled: int = 0
    errors: int = 0
    latency_ms: float = 0.0
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class Telemetry:
    """Per-run counters keyed by endpoint template."""

    by_endpoint: dict[tuple[str, str], CallStats] = field(default_factory=lambda: defaultdict(CallStats))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, method: str, template: str, status: int | None, latency_ms: float, attempt: int) -> None:
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

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.by_endpoint.values())

    @property
    def retries(self) -> int:
        return sum(s.retries for s in self.by_endpoint.values())

    @property
    def throttled(self) -> int:
        return sum(s.throttled for s in self.by_endpoint.values())


Classifier = Callable[[requests.Response], tuple[ErrorClass, str] | None]


def default_classifier(response: requests.Response) -> tuple[ErrorClass, str] | None:
    """Map an HTTP answer to the taxonomy; None means success."""
    status = response.status_code
    if status < 400:
        return None
    message = _error_message(response)
    if status == 401:
        return ErrorClass.AUTH_EXPIRED, message or "the provider rejected the credentials (401)"
    if status == 403:
        return ErrorClass.PERMISSION_DENIED, message or "the credential lacks a permission (403)"
    if status == 429:
        return ErrorClass.RATE_LIMITED, message or "rate limited (429)"
    if status >= 500 or status in (408, 423):
        return ErrorClass.TRANSIENT, message or f"provider error {status}"
    return ErrorClass.PROVIDER_CONTRACT, message or f"request rejected with {status}"


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
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class ProviderSession:
    """A requests session for one (provider, connection) with budget, retries and classification."""

    def __init__(self, provider: str, connection_id: str, *, auth: Callable[[requests.PreparedRequest], None] | None = None,
                 classifier: Classifier = default_classifier, retry: RetryPolicy | None = None,
                 budget: RateBudget | None = None, telemetry: Telemetry | None = None, timeout: float = 30.0,
                 verify: bool | str = True, observe: Callable[[requests.Response, RateBudget], None] | None = None,
                 seed: int | None = None) -> None:
        self.provider, self.connection_id = provider, connection_id
        self.session = requests.Session()
        self.session.verify = verify
        self.auth = auth
        self.classifier = classifier
        self.retry = retry or RetryPolicy()
        self.budget = budget or budget_for(provider, connection_id)
        self.telemetry = telemetry or Telemetry()
        self.timeout = timeout
        self.observe = observe
        self.rng = random.Random(seed)

    def request(self, method: str, url: str, *, expect_json: bool = True, **kwargs: Any) -> requests.Response:
        """Send with retries; raise CanonryError on a non-retryable answer or when retries run out."""
        template = endpoint_template(url)
        last_error: CanonryError | None = None
        for attempt in range(1, self.retry.max_attempts + 1):
            self.budget.acquire()
            started = time.perf_counter()
            try:
                request = requests.Request(method, url, **kwargs)
                prepared = self.session.prepare_request(request)
                if self.auth:
                    self.auth(prepared)
                response = self.session.send(prepared, timeout=self.timeout)
                if expect_json and response.status_code < 400:
                    response._canonry_json = self._decode(response, template)  # type: ignore[attr-defined]
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                self.telemetry.record(method, template, None, (time.perf_counter() - started) * 1000, attempt)
                last_error = self._error(ErrorClass.TRANSIENT, f"network failure: {type(exc).__name__}", template)
                time.sleep(self.retry.delay(attempt, None, self.rng))
                continue
            except _TruncatedBody as exc:
                self.telemetry.record(method, template, response.status_code,
                                      (time.perf_counter() - started) * 1000, attempt)
                # Retried (a body cut by the network heals on retry); if it never heals, the provider
                # is breaking its contract, and that is the class reported.
                last_error = self._error(ErrorClass.PROVIDER_CONTRACT, str(exc), template, response.status_code)
                time.sleep(self.retry.delay(attempt, None, self.rng))
                continue
            latency = (time.perf_counter() - started) * 1000
            self.telemetry.record(method, template, response.status_code, latency, attempt)
            if self.observe:
                self.observe(response, self.budget)
            verdict = self.classifier(response)
            if verdict is None:
                return response
            error_class, message = verdict
            last_error = self._error(error_class, message, template, response.status_code)
            if error_class == ErrorClass.RATE_LIMITED:
                wait = self.retry.delay(attempt, retry_after_seconds(response), self.rng)
                if retry_after_seconds(response) is None:
                    wait = max(wait, self.budget.interval / max(1, self.budget.limit) * 2)
                self.budget.pause(wait)
                continue
            if error_class == ErrorClass.TRANSIENT:
                time.sleep(self.retry.delay(attempt, retry_after_seconds(response), self.rng))
                continue
            raise last_error
        assert last_error is not None
        raise CanonryError(last_error.error_class, f"{last_error.detail} (gave up after {self.retry.max_attempts} "
                           "attempts)", provider=self.provider, connection_id=self.connection_id,
                           endpoint=last_error.endpoint, status=last_error.status)

    def get_json(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)._canonry_json  # type: ignore[attr-defined]

    def post_json(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)._canonry_json  # type: ignore[attr-defined]

    def _decode(self, response: requests.Response, template: str) -> Any:
        body = response.content
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) != len(body):
            raise _TruncatedBody(f"body truncated: {len(body)} of {declared} bytes")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise _TruncatedBody(f"malformed JSON ({exc.msg} at byte {exc.pos}) from {template}") from None

    def _error(self, error_class: ErrorClass, message: str, endpoint: str, status: int | None = None) -> CanonryError:
        return CanonryError(error_class, message, provider=self.provider, connection_id=self.connection_id,
                            endpoint=endpoint, status=status)

    def close(self) -> None:
        self.session.close()


class _TruncatedBody(Exception):
    pass
