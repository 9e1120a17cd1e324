"""Flow control of the HTTP kit: how a request is retried (`RetryPolicy`), the per-(provider, connection)
rate budget seeded from the provider's published limit (its `SPEC.rate_limit`), and the per-provider circuit
breaker. Used by `canonry.http.ProviderSession`; sources use `budget_for` for a second budget (HubSpot search)."""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass

from canonry import providers

RETRY_FLOOR_SECONDS = 0.05      # no retry sooner than this, whatever the provider says
RATE_LIMIT_FLOOR_SECONDS = 0.25  # `Retry-After: 0` on a 429 never hot-loops

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


def published_limit(provider: str) -> tuple[int, float]:
    """(requests, per seconds) the provider publishes: what every connection's budget starts from."""
    rate = providers.spec(provider).rate_limit
    return rate.requests, rate.seconds


def budget_for(provider: str, connection_id: str, limit: tuple[int, float] | None = None) -> RateBudget:
    with _BUDGETS_LOCK:
        key = (provider, connection_id)
        if key not in _BUDGETS:
            # The provider's published limit (its SPEC.rate_limit); an unknown provider without an
            # explicit limit is UnknownProvider, never a guessed budget.
            requests_, seconds = limit or published_limit(provider)
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

