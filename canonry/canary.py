"""Synthetic canary: the cheapest authenticated read of a connection (one small page of a small list), timed,
its outcome recorded in `ops.canary_runs` (latency, status, error class, trace id). It goes through the same
session as a sync (auth, retries off, error classification), so a failing canary fails the way a sync would.

Which request is cheapest is data (`PROBES`): per provider, the source's own session factory, where requests
go (the connection's base URL, or for Salesforce the org's instance URL from the OAuth token) and one request.
Greenhouse's client-credentials token is minted by the session's auth on the first request, so its probe is
the token exchange plus one read, as a sync's first call is. A provider without a probe is a clear error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from canonry import ops, tracing
from canonry.config import Connection
from canonry.errors import CanonryError, ConfigError, ErrorClass
from canonry.http_budget import RetryPolicy


@dataclass(frozen=True)
class Probe:
    session: Callable  # runtime -> ProviderSession (the source's own auth and classification)
    method: str
    path: str
    params: dict | None = None
    json: dict | None = None
    base: Callable | None = None  # runtime -> base URL; default: the connection's base_url


def _hubspot(runtime):
    return runtime.session()


def _lever(runtime):
    from sources.lever.helpers import session_for

    return session_for(runtime)


def _pipedrive(runtime):
    from sources.pipedrive.helpers import session_for

    return session_for(runtime)


def _greenhouse(runtime):
    from sources.greenhouse.helpers import observe_rate_limit

    return runtime.session(observe=observe_rate_limit)


def _salesforce(runtime):
    from sources.salesforce.helpers import classify

    return runtime.session(classifier=classify)


def _salesforce_api(runtime) -> str:
    """Salesforce answers on the org's instance URL, which comes with the OAuth token (as in the source)."""
    from sources.salesforce.settings import API_VERSION

    instance = runtime.credential.metadata().get("instance_url") or runtime.base_url
    return f"{instance.rstrip('/')}/services/data/v{API_VERSION}"


def _ashby(runtime):
    from canonry.runtime import basic_key_auth

    return runtime.session(auth=basic_key_auth(runtime.credential))


def _workable(runtime):
    from sources.workable.helpers import session_for

    return session_for(runtime)


PROBES: dict[str, Probe] = {
    "hubspot": Probe(_hubspot, "GET", "/crm/v3/owners", {"limit": 1}),
    "lever": Probe(_lever, "GET", "/v1/users", {"limit": 1}),
    "pipedrive": Probe(_pipedrive, "GET", "/api/v2/stages", {"limit": 1}),
    "ashby": Probe(_ashby, "POST", "/user.list", json={"limit": 1}),
    "greenhouse": Probe(_greenhouse, "GET", "/v3/offices", {"per_page": 1}),
    # /limits: authenticated, tiny, and (on Salesforce) not counted against the daily API allocation
    "salesforce": Probe(_salesforce, "GET", "/limits", base=_salesforce_api),
    "workable": Probe(_workable, "GET", "/spi/v3/members", {"limit": 1}),
}


@dataclass
class CanaryResult:
    connection_id: str
    provider: str
    ok: bool
    status: int | None
    latency_ms: float
    error: CanonryError | None = None


def run(connection: Connection) -> CanaryResult:
    """One probe of the connection; recorded in ops.canary_runs. Raises only when there is no probe."""
    from canonry.pipeline import build_runtime

    probe = PROBES.get(connection.provider)
    if probe is None:
        raise ConfigError(f"no canary probe for provider {connection.provider!r} yet (have: "
                          f"{', '.join(sorted(PROBES))})", connection_id=connection.id,
                          hint="use `canonry sync -c <id>` to check this connection")
    started = time.perf_counter()
    status, error = None, None
    with tracing.span("canonry.canary", **{"canonry.connection_id": connection.id,
                                           "canonry.provider": connection.provider}) as current:
        try:
            runtime = build_runtime(connection)
            runtime.retry = RetryPolicy(max_attempts=1, max_throttled_attempts=1)  # a probe measures, never waits
            session = probe.session(runtime)
            kwargs = {"params": probe.params} if probe.params else {}
            if probe.json is not None:
                kwargs["json"] = probe.json
            base = probe.base(runtime) if probe.base else runtime.base_url
            response = session.request(probe.method, base.rstrip("/") + probe.path, **kwargs)
            status = response.status_code
        except CanonryError as exc:
            error, status = exc, exc.status
        except Exception as exc:  # noqa: BLE001 - a probe reports every failure as its outcome
            error = CanonryError(ErrorClass.TRANSIENT, f"canary failed: {type(exc).__name__}",
                                 provider=connection.provider, connection_id=connection.id)
        trace = tracing.trace_id(current)
    result = CanaryResult(connection.id, connection.provider, error is None, status,
                          round((time.perf_counter() - started) * 1000, 2), error)
    ops.append("canary_runs", [{
        "run_id": uuid.uuid4().hex[:12], "connection_id": connection.id, "provider": connection.provider,
        "probed_at": datetime.now(UTC), "ok": result.ok, "status": status, "latency_ms": result.latency_ms,
        "error_class": error.error_class.value if error else None, "message": str(error) if error else None,
        "trace_id": trace}])
    return result
