"""The one HTTP session factory every source uses.

A `ProviderSession` wraps `requests.Session` with: a per-(provider, connection) rate budget, retries of
`transient` and `rate_limited` answers with exponential back-off and full jitter (with a floor, so
`Retry-After: 0` never hot-loops), classification of every failure into the taxonomy of
`canonry/errors.py`, JSON decoding that turns a malformed body into `provider_contract`, and telemetry
(calls, retries, 429s, latency per endpoint template) that the pipeline writes to `ops.api_calls`.
Credentials are attached by an `auth` callable and never appear in errors or telemetry.

Every socket the session opens is checked against the address rules of `canonry/netsafety.py` once it
has connected (loopback and public hosts; a private network only with the connection's
`allow_private_network`): a DNS answer that changed since `canonry validate` cannot send the credential
to cloud metadata or an internal host. A refusal is a `config_error`, never retried.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

from canonry import tracing
from canonry.auth_halt import CredentialHalt
from canonry.errors import CanonryError, ErrorClass
from canonry.netsafety import DestinationRefused, check_url, guard_session

# Published limits used to seed the budget: (requests, per seconds).
PUBLISHED_LIMITS: dict[str, tuple[int, float]] = {
    "hubspot": (100, 10.0),
    "salesforce": (25, 1.0),
    "pipedrive": (80, 2.0),
    "greenhouse": (50, 10.0),
    "lever": (10, 1.0),
    "ashby": (15, 1.0),
}

RETRY_FLOOR_SECONDS = 0.05      # no retry sooner than this, whatever the provider says
RATE_LIMIT_FLOOR_SECONDS = 0.25  # `Retry-After: 0` on a 429 never hot-loops
_ID_SEGMENT = re.compile(r"/(\d+|[0-9a-f]{8}-[0-9a-f-]{27,}|[A-Za-z0-9]{15}|[A-Za-z0-9]{18})(?=/|$)")


def endpoint_template(url: str) -> str:
    """`/crm/v3/objects/contacts/123` -> `/crm/v3/objects/contacts/{id}` (telemetry without ids)."""
    return _ID_SEGMENT.sub("/{id}", urlsplit(url).path) or "/"


@dataclass
class RetryPolicy:
    """How a request is retried.

    `transient` answers (5xx, timeouts, resets, truncated bodies) consume `max_attempts`; `rate_limited`
    answers are retried separately, up to `max_throttled_attempts` and `max_throttle_wait` seconds spent
    waiting on them (a 429 storm is not a reason to give up on a request, a provider that never lets us
    through is). Every wait is full-jitter exponential back-off, never below a floor and never below
    what the provider asked for (`Retry-After` / reset), capped at `max_delay` (x3 when the provider
    asked for more)."""

    max_attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 20.0
    max_throttled_attempts: int = 40
    max_throttle_wait: float = 300.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random,
              floor: float = RETRY_FLOOR_SECONDS) -> float:
        """Full-jitter exponential back-off, never below the floor nor below Retry-After."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (max(1, attempt) - 1)))
        jittered = rng.uniform(0, ceiling)
        if retry_after is not None:
            return max(floor, min(self.max_delay * 3, retry_after) + jittered * 0.1)
        return max(floor, jittered)


class RateBudget:
    """The request budget of one (provider, connection): at most `limit` requests per `interval` seconds.

    A sliding-window log, not a token bucket: providers count requests in rolling windows (HubSpot's
    "100 per 10 seconds"), and a full bucket refilled continuously overshoots such a window by up to 2x.
    A request's slot is stamped when it is sent and re-stamped when its answer arrives (`release`):
    the provider counted it somewhere in between, so the slot is free again only `interval` seconds
    after the answer — never early, whatever the latency or the number of threads.

    Corrected by what responses say (`observe`): a limit/interval the provider announces replaces the
    published one; a `remaining` lower than ours means someone else spends the same quota (phantom
    slots fill the difference); `pause` blocks every request until a time (`Retry-After`, reset).
    `daily_remaining` records the daily quota left when the provider reports one (for telemetry and
    sources that stop early at a checkpoint; the provider's own refusal is what ends a run).
    """

    GUARD_SECONDS = 0.02  # margin between our clock and the provider's

    def __init__(self, limit: int, interval: float) -> None:
        self.limit, self.interval = limit, interval
        self.slots: list[list[float]] = []  # [stamp]; inf while in flight
        self.updated = time.monotonic()
        self.blocked_until = 0.0
        self.daily_remaining: int | None = None
        self.waited = 0.0
        self.lock = threading.Lock()

    # kept for callers of the earlier token-bucket budget
    @property
    def tokens(self) -> float:
        with self.lock:
            return float(max(0, self.limit - self._in_window(time.monotonic())))

    def _in_window(self, now: float) -> int:
        horizon = now - self.interval - self.GUARD_SECONDS
        self.slots = [s for s in self.slots if s[0] > horizon]
        return len(self.slots)

    def acquire_slot(self) -> list[float]:
        """Wait for a request slot; returns the slot to `release` when the answer arrives."""
        while True:
            with self.lock:
                now = time.monotonic()
                pause = max(0.0, self.blocked_until - now)
                if pause == 0 and self._in_window(now) < self.limit:
                    slot = [math.inf]
                    self.slots.append(slot)
                    return slot
                if pause == 0:
                    finite = [s[0] for s in self.slots if s[0] != math.inf]
                    oldest = min(finite) if finite else now + 0.05
                    pause = max(0.005, oldest + self.interval + self.GUARD_SECONDS - now)
                pause = min(pause, 1.0)
            time.sleep(pause)
            with self.lock:
                self.waited += pause

    def release(self, slot: list[float]) -> None:
        with self.lock:
            slot[0] = time.monotonic()

    def acquire(self) -> float:
        """Wait for a request slot (stamped now); returns the seconds waited."""
        before = self.waited
        slot = self.acquire_slot()
        self.release(slot)
        return self.waited - before

    def observe(self, remaining: int | None, limit: int | None, interval: float | None) -> None:
        """Correct the budget from what the provider says (limit per interval, requests left in it)."""
        with self.lock:
            if limit and limit > 0:
                self.limit = int(limit)
            if interval and interval > 0:
                self.interval = float(interval)
            if remaining is not None:
                now = time.monotonic()
                ours = self.limit - self._in_window(now)
                for _ in range(max(0, ours - max(0, int(remaining)))):
                    self.slots.append([now])

    def observe_daily(self, remaining: int | None) -> None:
        with self.lock:
            self.daily_remaining = remaining

    def fill(self) -> None:
        """The provider says the window is full: treat it so (slots free up as they expire)."""
        with self.lock:
            now = time.monotonic()
            for _ in range(max(0, self.limit - self._in_window(now))):
                self.slots.append([now])

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


class CircuitBreaker:
    """One per provider: after `threshold` consecutive transient failures the circuit opens and no
    request is sent for `cooldown` seconds (doubling while the provider keeps failing, up to
    `max_cooldown`); then one probe goes through (half-open) and its outcome closes or re-opens it.
    Requests wait for the circuit instead of failing: the retry policy still bounds them."""

    def __init__(self, threshold: int = 8, cooldown: float = 1.0, max_cooldown: float = 30.0) -> None:
        self.threshold, self.base_cooldown, self.max_cooldown = threshold, cooldown, max_cooldown
        self.cooldown = cooldown
        self.failures = 0
        self.open_until = 0.0
        self.probing = False
        self.trips = 0
        self.prober: int | None = None
        self.lock = threading.Lock()

    @property
    def state(self) -> str:
        with self.lock:
            if self.failures < self.threshold:
                return "closed"
            return "half_open" if time.monotonic() >= self.open_until else "open"

    def before_request(self) -> None:
        while True:
            with self.lock:
                if self.failures < self.threshold:
                    return
                now = time.monotonic()
                if now >= self.open_until and not self.probing:
                    self.probing, self.prober = True, threading.get_ident()
                    return
                wait = max(0.01, self.open_until - now) if now < self.open_until else 0.05
            time.sleep(min(wait, 1.0))

    def abandon(self) -> None:
        """The calling thread's request ended with no answer to judge (an exception before the provider
        answered, e.g. a credential refresh that failed): if it was the probe, let another request probe
        instead of every request waiting for an outcome that will never come."""
        with self.lock:
            if self.probing and self.prober == threading.get_ident():
                self.probing = False

    def success(self) -> None:
        with self.lock:
            self.failures, self.probing, self.cooldown = 0, False, self.base_cooldown

    def failure(self) -> None:
        with self.lock:
            self.failures += 1
            if self.probing or self.failures == self.threshold:
                if self.probing:
                    self.cooldown = min(self.max_cooldown, self.cooldown * 2)
                self.trips += 1
                self.open_until = time.monotonic() + self.cooldown
            self.probing = False


_BREAKERS: dict[str, CircuitBreaker] = {}


def breaker_for(provider: str) -> CircuitBreaker:
    with _BUDGETS_LOCK:
        if provider not in _BREAKERS:
            _BREAKERS[provider] = CircuitBreaker()
        return _BREAKERS[provider]


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


Classifier = Callable[[requests.Response], tuple[ErrorClass, str] | None]


def default_classifier(response: requests.Response) -> tuple[ErrorClass, str] | None:
    """Map an HTTP answer to the taxonomy; None means success."""
    status = response.status_code
    if status < 400:
        return None
    message = _error_message(response)
    body = _json_or_none(response)
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


def _json_or_none(response: requests.Response) -> Any:
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


def reset_seconds(response: requests.Response) -> float | None:
    """`X-RateLimit-Reset` / `RateLimit-Reset`: an epoch time or a number of seconds from now."""
    value = _int_header(response.headers, "X-RateLimit-Reset", "RateLimit-Reset", "X-Ratelimit-Reset")
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
    the common `X-RateLimit-*` / `RateLimit-*` (Greenhouse, Lever, Ashby, Pipedrive), Salesforce's
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
        limit = _int_header(headers, "X-RateLimit-Limit", "RateLimit-Limit")
        remaining = _int_header(headers, "X-RateLimit-Remaining", "RateLimit-Remaining")
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


class ProviderSession:
    """A requests session for one (provider, connection) with budget, retries and classification."""

    def __init__(self, provider: str, connection_id: str, *, auth: Callable[[requests.PreparedRequest], None] | None = None,
                 classifier: Classifier = default_classifier, retry: RetryPolicy | None = None,
                 budget: RateBudget | None = None, telemetry: Telemetry | None = None, timeout: float = 30.0,
                 verify: bool | str = True, observe: Callable[[requests.Response, RateBudget], None] | None = None,
                 seed: int | None = None, breaker: CircuitBreaker | None = None,
                 allow_private_network: bool = False, halt: CredentialHalt | None = None) -> None:
        self.provider, self.connection_id = provider, connection_id
        # Connection-wide "credential dead" flag (canonry/auth_halt.py): one 401 stops every reader.
        self.halt = halt or CredentialHalt()
        self.session = requests.Session()
        self.session.verify = verify
        # requests consults the environment (proxies, no_proxy, .netrc) on every request when trust_env is
        # on: measurable per page. Auth is ours; proxies are honoured when the environment names one.
        self.session.trust_env = bool(requests.utils.getproxies())
        self.allow_private_network = allow_private_network
        guard_session(self.session, allow_private=allow_private_network)
        self.auth = auth
        self.classifier = classifier
        self.retry = retry or RetryPolicy()
        self.budget = budget or budget_for(provider, connection_id)
        self.breaker = breaker or breaker_for(provider)
        self.telemetry = telemetry or Telemetry()
        self.timeout = timeout
        self.observe = observe
        self.rng = random.Random(seed)

    def request(self, method: str, url: str, *, expect_json: bool = True, **kwargs: Any) -> requests.Response:
        """Send with retries; raise CanonryError on a non-retryable answer or when retries run out.

        One span per request (its attempts as events): provider, method, endpoint template, status, attempts,
        error class — never the URL or its query string."""
        template = endpoint_template(url)
        with tracing.span(f"{method} {template}", **{"canonry.provider": self.provider,
                                                     "canonry.connection_id": self.connection_id,
                                                     "http.request.method": method, "url.template": template}) as sp:
            try:
                response = self._request(method, url, expect_json=expect_json, **kwargs)
                sp.set_attribute("http.response.status_code", response.status_code)
                return response
            except CanonryError as exc:
                sp.set_attribute("canonry.error_class", exc.error_class.value)
                if exc.status is not None:
                    sp.set_attribute("http.response.status_code", exc.status)
                self.breaker.abandon()
                raise
            except BaseException:
                self.breaker.abandon()
                raise

    def _refuse(self, message: str, template: str, hint: str | None = None) -> CanonryError:
        error = CanonryError(ErrorClass.CONFIG_ERROR, message, provider=self.provider,
                             connection_id=self.connection_id, endpoint=template, hint=hint)
        self.telemetry.error(error, retried=False)
        return error

    def _check_proxied(self, url: str, template: str) -> None:
        """Through a proxy the socket reaches the proxy, not the host: judge the host by its name instead."""
        if not (self.session.trust_env and requests.utils.get_environ_proxies(url)):
            return
        for found in check_url(url, allow_private=self.allow_private_network):
            if found.code.startswith("url_"):
                raise self._refuse(f"refused to send a request: {found.message}", template, found.hint)

    def _request(self, method: str, url: str, *, expect_json: bool, **kwargs: Any) -> requests.Response:
        template = endpoint_template(url)
        self._check_proxied(url, template)
        last_error: CanonryError | None = None
        attempt = transient_attempts = throttled_attempts = 0
        throttle_waited = 0.0
        while True:
            attempt += 1
            self.halt.check(template)
            self.breaker.before_request()
            slot = self.budget.acquire_slot()
            if self.halt.dead:  # rejected while this one waited for its slot: not sent
                self.budget.release(slot)
                self.halt.check(template)
            started = time.perf_counter()
            response = None
            try:
                request = requests.Request(method, url, **kwargs)
                prepared = self.session.prepare_request(request)
                if self.auth:
                    self.auth(prepared)
                response = self.session.send(prepared, timeout=self.timeout)
                if expect_json and response.status_code < 400:
                    response._canonry_json = self._decode(response, template)  # type: ignore[attr-defined]
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                self.budget.release(slot)
                self.telemetry.record(method, template, None, (time.perf_counter() - started) * 1000, attempt)
                self.breaker.failure()
                last_error = self._error(ErrorClass.TRANSIENT, f"network failure: {type(exc).__name__}", template)
                transient_attempts += 1
                if not self._again(last_error, transient_attempts < self.retry.max_attempts):
                    break
                time.sleep(self.retry.delay(transient_attempts, None, self.rng))
                continue
            except DestinationRefused as exc:
                self.budget.release(slot)
                raise self._refuse(exc.detail, template, exc.hint) from None
            except _TruncatedBody as exc:
                self.budget.release(slot)
                assert response is not None
                self.telemetry.record(method, template, response.status_code,
                                      (time.perf_counter() - started) * 1000, attempt)
                self.breaker.failure()
                # Retried (a body cut by the network heals on retry); if it never heals, the provider
                # is breaking its contract, and that is the class reported.
                last_error = self._error(ErrorClass.PROVIDER_CONTRACT, str(exc), template, response.status_code)
                transient_attempts += 1
                if not self._again(last_error, transient_attempts < self.retry.max_attempts):
                    break
                time.sleep(self.retry.delay(transient_attempts, None, self.rng))
                continue
            self.budget.release(slot)
            latency = (time.perf_counter() - started) * 1000
            self.telemetry.record(method, template, response.status_code, latency, attempt)
            observe_rate_headers(response, self.budget)
            if self.observe:
                self.observe(response, self.budget)
            verdict = self.classifier(response)
            if verdict is None:
                self.breaker.success()
                return response
            error_class, message = verdict
            last_error = self._error(error_class, message, template, response.status_code)
            if error_class == ErrorClass.RATE_LIMITED:
                self.breaker.success()  # the provider is up, it asks us to slow down
                self.telemetry.throttled_answer(method, template, response.status_code, attempt)
                throttled_attempts += 1
                wait = self._throttle_wait(response, throttled_attempts)
                if not self._again(last_error, throttled_attempts < self.retry.max_throttled_attempts
                                   and throttle_waited + wait <= self.retry.max_throttle_wait):
                    break
                throttle_waited += wait
                self.budget.pause(wait)
                continue
            if error_class == ErrorClass.TRANSIENT:
                self.breaker.failure()
                transient_attempts += 1
                if not self._again(last_error, transient_attempts < self.retry.max_attempts):
                    break
                time.sleep(self.retry.delay(transient_attempts, retry_after_seconds(response), self.rng))
                continue
            self.breaker.success()
            self.telemetry.error(last_error, retried=False)
            if error_class == ErrorClass.AUTH_EXPIRED:
                self.halt.set(last_error)
            raise last_error
        assert last_error is not None
        raise CanonryError(last_error.error_class, f"{last_error.detail} (gave up after {attempt} attempts)",
                           provider=self.provider, connection_id=self.connection_id,
                           endpoint=last_error.endpoint, status=last_error.status)

    def _again(self, error: CanonryError, allowed: bool) -> bool:
        self.telemetry.error(error, retried=allowed)
        return allowed

    def _throttle_wait(self, response: requests.Response, attempt: int) -> float:
        """How long every request of this connection waits after a 429: what the provider asked for
        (`Retry-After`, reset), else back-off sized from the budget's window; never below the floor."""
        asked = retry_after_seconds(response)
        if asked is None:
            asked = reset_seconds(response)
        if asked is None:
            body = _json_or_none(response)
            policy = body.get("policyName") if isinstance(body, dict) else None
            if policy == "SECONDLY":
                asked = 1.0
        wait = self.retry.delay(attempt, asked, self.rng, floor=RATE_LIMIT_FLOOR_SECONDS)
        if asked is None:
            wait = max(wait, self.budget.interval / max(1, self.budget.limit) * 2)
        return wait

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
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # orjson refuses some valid JSON (integers beyond 64 bits, lone surrogates): ask json
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
