"""Synthetic canary: the cheapest authenticated read of a connection (one small page of a small list), timed,
its outcome recorded in `ops.canary_runs` (latency, status, error class, trace id). It goes through the same
session as a sync (auth, retries off, error classification), so a failing canary fails the way a sync would.

Which request is cheapest is data: each provider's `ProviderSpec.probe`. It goes through the source's own session
(`session_for` in its helpers) to the source's API root (`api_base` there: Salesforce's org instance URL from the
OAuth token; else the connection's base URL).
Greenhouse's client-credentials token is minted by the session's auth on the first request, so its probe is
the token exchange plus one read, as a sync's first call is. A provider without a probe is a clear error.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from canonry import ops, tracing
from canonry.config import Connection
from canonry.errors import CanonryError, ConfigError, ErrorClass
from canonry.http_budget import RetryPolicy
from canonry.providers import spec


def _session_and_base(runtime, slug: str):
    """The source's own session and API root (its helpers' `session_for` / `api_base`, where it has them)."""
    from canonry.providers import source_module

    helpers = source_module(slug, "helpers")
    session = helpers.session_for(runtime) if hasattr(helpers, "session_for") else runtime.session()
    base = helpers.api_base(runtime) if hasattr(helpers, "api_base") else runtime.base_url
    return session, base


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

    probe = spec(connection.provider).probe
    if probe is None:
        raise ConfigError(f"no canary probe for provider {connection.provider!r} (its ProviderSpec declares no "
                          f"`probe`)", connection_id=connection.id,
                          hint="use `canonry sync -c <id>` to check this connection")
    started = time.perf_counter()
    status, error = None, None
    with tracing.span("canonry.canary", **{"canonry.connection_id": connection.id,
                                           "canonry.provider": connection.provider}) as current:
        try:
            runtime = build_runtime(connection)
            runtime.retry = RetryPolicy(max_attempts=1, max_throttled_attempts=1)  # a probe measures, never waits
            session, base = _session_and_base(runtime, connection.provider)
            kwargs = {"params": dict(probe.params)} if probe.params else {}
            if probe.json is not None:
                kwargs["json"] = dict(probe.json)
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
