"""The HTTP kit over real HTTP against a sandbox: retry floor, circuit breaker, a page that never answers,
budget corrections from headers, and classification of provider answers into the taxonomy."""

from __future__ import annotations

import json
import time

import pytest
import requests

from canonry.auth_halt import CredentialHalt
from canonry.errors import CanonryError, ErrorClass
from canonry.http import ProviderSession
from canonry.http_budget import RATE_LIMIT_FLOOR_SECONDS, CircuitBreaker, RateBudget, RetryPolicy
from canonry.http_classify import default_classifier, observe_rate_headers
from canonry.http_telemetry import Telemetry
from canonry.runtime import Credential, bearer_auth
from canonry.sandbox import DEFAULT_TOKENS
from tests.helpers import clear_request_log, request_log, set_faults

TOKEN = DEFAULT_TOKENS["hubspot"]


def _session(server, **kwargs) -> ProviderSession:
    credential = Credential("api_key", "test", lambda: TOKEN)
    kwargs.setdefault("budget", RateBudget(100, 10.0))
    kwargs.setdefault("breaker", CircuitBreaker())
    return ProviderSession("hubspot", f"kit-{time.monotonic_ns()}", auth=bearer_auth(credential), seed=1, **kwargs)


def _contacts(server) -> str:
    return f"{server.base_url}/crm/v3/objects/contacts"


def test_429_storm_is_retried_with_a_floor_and_recorded(sandbox_factory):
    server = sandbox_factory("hubspot", scale=20)
    set_faults(server, storm_429=4)
    telemetry = Telemetry()
    body = _session(server, telemetry=telemetry).get_json(_contacts(server), params={"limit": 10})
    assert len(body["results"]) == 10
    stamps = [r["at"] for r in request_log(server) if r["path"] == "/crm/v3/objects/contacts"]
    assert len(stamps) == 5 and telemetry.throttled == 4 and telemetry.retries == 4
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert min(gaps) >= RATE_LIMIT_FLOOR_SECONDS * 0.9  # no hot loop, whatever the provider says
    assert {e.error_class for e in telemetry.error_events} == {"rate_limited"}
    assert all(e.retried for e in telemetry.error_events)


def test_circuit_breaker_opens_after_consecutive_failures(sandbox_factory):
    server = sandbox_factory("hubspot", scale=20)
    set_faults(server, error_rate=1.0)
    breaker = CircuitBreaker(threshold=3, cooldown=0.6)
    session = _session(server, breaker=breaker, retry=RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.02))
    with pytest.raises(CanonryError) as caught:
        session.get_json(_contacts(server))
    assert caught.value.error_class == ErrorClass.TRANSIENT and "gave up after 5 attempts" in str(caught.value)
    stamps = [r["at"] for r in request_log(server) if r["path"] == "/crm/v3/objects/contacts"]
    assert len(stamps) == 5
    assert stamps[3] - stamps[2] >= 0.5  # the circuit held the 4th request back
    assert breaker.trips >= 1 and breaker.state in ("open", "half_open")
    set_faults(server)
    time.sleep(breaker.cooldown * 2)
    assert session.get_json(_contacts(server), params={"limit": 1})["results"]
    assert breaker.state == "closed"


def test_a_probe_that_dies_before_an_answer_does_not_wedge_the_circuit(sandbox_factory):
    """Half-open lets one probe through; if that request raises before the provider answers (here its
    credential cannot be read), the next request probes instead of waiting forever for its outcome."""
    server = sandbox_factory("hubspot", scale=20)
    set_faults(server, error_rate=1.0)
    breaker = CircuitBreaker(threshold=2, cooldown=0.2)
    retry = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)
    with pytest.raises(CanonryError):
        _session(server, breaker=breaker, retry=retry).get_json(_contacts(server))
    set_faults(server)
    time.sleep(0.3)  # half-open

    def broken_auth(request):
        raise RuntimeError("the secret store is unreachable")

    broken = ProviderSession("hubspot", "kit-broken", auth=broken_auth, budget=RateBudget(100, 10.0), breaker=breaker)
    with pytest.raises(RuntimeError):
        broken.get_json(_contacts(server))
    started = time.monotonic()
    assert _session(server, breaker=breaker).get_json(_contacts(server), params={"limit": 1})["results"]
    assert time.monotonic() - started < 5 and breaker.state == "closed"


def test_one_401_stops_every_session_of_the_connection_until_the_credential_is_renewed(sandbox_factory):
    """The connection-wide "credential dead" flag: the first 401 answer sets it, every other session (thread)
    of the connection then fails `auth_expired` without sending; a renewed credential (`clear`) sends again."""
    server = sandbox_factory("hubspot", scale=20)
    halt = CredentialHalt()
    readers = [_session(server, halt=halt) for _ in range(3)]
    assert readers[0].get_json(_contacts(server), params={"limit": 1})["results"]
    clear_request_log(server)
    set_faults(server, revoke_after=0)
    with pytest.raises(CanonryError) as first:
        readers[0].get_json(_contacts(server))
    assert first.value.error_class == ErrorClass.AUTH_EXPIRED and first.value.status == 401 and halt.dead
    for reader in readers[1:]:
        with pytest.raises(CanonryError) as halted:
            reader.get_json(_contacts(server))
        assert halted.value.error_class == ErrorClass.AUTH_EXPIRED and halted.value.status is None
        assert "not sent" in halted.value.detail and "/crm/v3/objects/contacts" in halted.value.detail
    assert [r["status"] for r in request_log(server) if not r["path"].startswith("/_sandbox")] == [401]
    # Another connection (its own flag) is not stopped by this one's 401.
    with pytest.raises(CanonryError) as other:
        _session(server).get_json(_contacts(server))
    assert other.value.status == 401
    requests.post(f"{server.base_url}/_sandbox/tokens", json={"add": [TOKEN]}, timeout=10).raise_for_status()
    halt.clear()
    assert readers[2].get_json(_contacts(server), params={"limit": 1})["results"]


def test_a_page_that_never_answers_times_out_and_is_retried(sandbox_factory):
    server = sandbox_factory("hubspot", scale=20)
    set_faults(server, hang_after=0)
    telemetry = Telemetry()
    session = _session(server, telemetry=telemetry, timeout=0.5)
    body = session.get_json(_contacts(server), params={"limit": 5})
    assert len(body["results"]) == 5
    assert telemetry.retries == 1
    assert [e.error_class for e in telemetry.error_events] == ["transient"]


def test_truncated_and_invalid_bodies_heal_on_retry_or_fail_as_provider_contract(sandbox_factory):
    server = sandbox_factory("hubspot", scale=20)
    set_faults(server, invalid_json_rate=1.0)
    session = _session(server, retry=RetryPolicy(max_attempts=3, base_delay=0.01))
    with pytest.raises(CanonryError) as caught:
        session.get_json(_contacts(server))
    assert caught.value.error_class == ErrorClass.PROVIDER_CONTRACT
    set_faults(server, truncate_rate=0.5, seed=3)
    assert len(session.get_json(_contacts(server), params={"limit": 10})["results"]) == 10


def test_budget_is_corrected_from_the_providers_headers(sandbox_factory):
    from canonry.sandbox import start_sandbox

    server = start_sandbox("hubspot", scale=20, burst_limit=40)
    try:
        budget = RateBudget(100, 10.0)  # published limit; this portal allows 40 per 10 s
        session = _session(server, budget=budget)
        session.get_json(_contacts(server), params={"limit": 1})
        assert budget.limit == 40 and budget.interval == 10.0
        assert budget.tokens == 39
    finally:
        server.stop()


def _response(status: int, body: dict | None = None, headers: dict | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body or {}).encode()
    response.headers.update(headers or {})
    return response


@pytest.mark.parametrize("status,body,expected", [
    (401, {"message": "expired"}, ErrorClass.AUTH_EXPIRED),
    (403, {"category": "MISSING_SCOPES"}, ErrorClass.PERMISSION_DENIED),
    (403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],
     ErrorClass.RATE_LIMITED),
    (429, {"policyName": "TEN_SECONDLY_ROLLING"}, ErrorClass.RATE_LIMITED),
    (429, {"policyName": "DAILY"}, ErrorClass.QUOTA_EXHAUSTED),
    (503, {}, ErrorClass.TRANSIENT),
    (423, {}, ErrorClass.TRANSIENT),
    (400, {"success": False}, ErrorClass.PROVIDER_CONTRACT),
])
def test_classification(status, body, expected):
    assert default_classifier(_response(status, body))[0] == expected


def test_budget_reads_daily_quota_and_generic_rate_headers():
    budget = RateBudget(25, 1.0)
    observe_rate_headers(_response(200, {}, {"Sforce-Limit-Info": "api-usage=14990/15000"}), budget)
    assert budget.daily_remaining == 10
    observe_rate_headers(_response(200, {}, {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "10"}), budget)
    assert budget.limit == 50 and budget.tokens == 10


def test_workable_spelling_of_the_rate_headers_corrects_the_budget():
    """Workable sends `X-Rate-Limit-Limit/Remaining/Reset` (epoch seconds), not `X-RateLimit-*`."""
    import time

    from canonry.http_classify import reset_seconds

    budget = RateBudget(10, 10.0)
    response = _response(200, {}, {"X-Rate-Limit-Limit": "50", "X-Rate-Limit-Remaining": "7",
                                   "X-Rate-Limit-Reset": str(int(time.time()) + 8)})
    observe_rate_headers(response, budget)
    assert budget.limit == 50 and budget.tokens == 7
    assert 6 <= reset_seconds(response) <= 8
