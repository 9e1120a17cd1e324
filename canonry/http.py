"""The one HTTP session factory every source uses.

A `ProviderSession` wraps `requests.Session` with: a per-(provider, connection) rate budget, retries of
`transient` and `rate_limited` answers with exponential back-off and full jitter (with a floor, so
`Retry-After: 0` never hot-loops), classification of every failure into the taxonomy of
`canonry/errors.py`, JSON decoding that turns a malformed body into `provider_contract`, and telemetry
(calls, retries, 429s, latency per endpoint template) that the pipeline writes to `ops.api_calls`.
Credentials are attached by an `auth` callable and never appear in errors or telemetry. The parts live
beside it: `http_budget` (retry policy, rate budget, circuit breaker), `http_classify` (answers -> error
classes, Retry-After and rate-limit headers), `http_telemetry` (counters per endpoint template).

Every socket the session opens is checked against the address rules of `canonry/netsafety.py` once it
has connected (loopback and public hosts; a private network only with the connection's
`allow_private_network`): a DNS answer that changed since `canonry validate` cannot send the credential
to cloud metadata or an internal host. A refusal is a `config_error`, never retried.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

import orjson
import requests

from canonry import tracing
from canonry.auth_halt import CredentialHalt
from canonry.errors import CanonryError, ErrorClass
from canonry.http_budget import (
    RATE_LIMIT_FLOOR_SECONDS,
    CircuitBreaker,
    RateBudget,
    RetryPolicy,
    breaker_for,
    budget_for,
)
from canonry.http_classify import (
    Classifier,
    default_classifier,
    json_or_none,
    observe_rate_headers,
    reset_seconds,
    retry_after_seconds,
)
from canonry.http_telemetry import Telemetry, endpoint_template
from canonry.netsafety import DestinationRefused, check_url, guard_session


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
            body = json_or_none(response)
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
