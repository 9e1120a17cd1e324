"""Runs one connection's sync: its dlt source and pipeline, the load, and the ops records."""

from __future__ import annotations

import importlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dlt
from dlt.pipeline.exceptions import PipelineStepFailed

from canonry import ops
from canonry.config import Connection
from canonry.errors import CanonryError, ErrorClass
from canonry.http import Telemetry
from canonry.oauth import client_credentials_credential, oauth_credential
from canonry.runtime import ConnectionRuntime, Credential
from canonry.secrets import SecretNotFound, install_redaction, resolve_secret
from canonry.warehouse import connect, pipelines_dir, warehouse_path


@dataclass
class SyncResult:
    connection_id: str
    provider: str
    status: str  # success | partial (stopped cleanly at a checkpoint, e.g. quota_exhausted) | failed
    records: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    retries: int = 0
    throttled: int = 0
    duration_s: float = 0.0
    load_ids: list[str] = field(default_factory=list)
    error: CanonryError | None = None
    run_id: str = ""


def provider_settings(provider: str):
    return importlib.import_module(f"sources.{provider}.settings")


def build_credential(connection: Connection) -> Credential:
    auth = connection.auth
    settings = provider_settings(connection.provider)
    if auth.kind == "client_credentials" and getattr(settings, "CLIENT_CREDENTIALS_GRANT", False):
        # The provider mints tokens from client credentials (settings.CLIENT_CREDENTIALS_GRANT). Token
        # endpoint: the provider's (settings.TOKEN_URL), or base_url + settings.TOKEN_PATH when the
        # connection points elsewhere (a sandbox); a `token_endpoint` in the stored JSON wins over both.
        endpoint = getattr(settings, "TOKEN_URL", None)
        if connection.base_url and getattr(settings, "TOKEN_PATH", None):
            endpoint = connection.base_url.rstrip("/") + settings.TOKEN_PATH
        return client_credentials_credential(connection.id, connection.provider, auth.secret,
                                             client_id=auth.client_id, client_secret_ref=auth.client_secret,
                                             token_endpoint=endpoint, verify=connection.tls_ca or True)
    if auth.kind in ("oauth2", "client_credentials"):
        return oauth_credential(connection.id, connection.provider, auth.secret, auth.client_secret,
                                client_id=auth.client_id, verify=connection.tls_ca or True, params=auth.params)
    return Credential(auth.kind, auth.secret, lambda: resolve_secret(auth.secret))


def build_runtime(connection: Connection, *, full_refresh: bool = False) -> ConnectionRuntime:
    settings = provider_settings(connection.provider)
    return ConnectionRuntime(
        connection_id=connection.id, tenant_id=connection.tenant, provider=connection.provider,
        base_url=(connection.base_url or settings.DEFAULT_BASE_URL).rstrip("/"),
        credential=build_credential(connection), objects=connection.objects,
        lookback=connection.lookback_delta,
        options={"full_refresh": full_refresh, "full_scan_every": connection.deletes.full_scan_every},
        verify_tls=connection.tls_ca or True,
    )


def dlt_pipeline(connection: Connection) -> dlt.Pipeline:
    # Arrow pages skip dlt's row normaliser; ask it to stamp `_dlt_load_id` (lineage to the raw row).
    os.environ["NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"] = "true"
    return dlt.pipeline(
        pipeline_name=f"canonry_{connection.id.replace('-', '_')}",
        pipelines_dir=str(pipelines_dir()),
        destination=dlt.destinations.duckdb(credentials=str(warehouse_path())),
        dataset_name=f"raw_{connection.provider}",
    )


def _canonry_error(exc: BaseException, connection: Connection) -> CanonryError:
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, CanonryError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return CanonryError(ErrorClass.PROVIDER_CONTRACT, f"{type(exc).__name__}: {str(exc)[:300]}",
                        provider=connection.provider, connection_id=connection.id)


def sync(connection: Connection, *, full_refresh: bool = False,
         on_start: Callable[[ConnectionRuntime], None] | None = None) -> SyncResult:
    """Sync one connection into raw_<provider>; never raises for provider failures (see result.error)."""
    install_redaction()
    run_id = uuid.uuid4().hex[:12]
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    ops.upsert_connection(connection.id, connection.tenant, connection.provider)
    runtime = build_runtime(connection, full_refresh=full_refresh)
    result = SyncResult(connection.id, connection.provider, "success", run_id=run_id)
    try:
        # Fail fast, before dlt starts, when the credential is dead (needs_reauth) or not ours.
        runtime.credential.value()
    except (CanonryError, SecretNotFound) as exc:
        if isinstance(exc, SecretNotFound):
            exc = CanonryError(ErrorClass.CONFIG_ERROR, f"the credential does not resolve: {exc}",
                               provider=connection.provider, connection_id=connection.id, hint=exc.hint)
        result.status, result.error = "failed", exc
        result.duration_s = time.perf_counter() - started
        _record(result, connection, started_at, full_refresh, runtime.telemetry)
        return result
    if on_start:
        on_start(runtime)
    module = importlib.import_module(f"sources.{connection.provider}")
    pipeline = dlt_pipeline(connection)
    try:
        info = pipeline.run(module.source(runtime), loader_file_format="parquet")
        result.load_ids = list(info.loads_ids)
        normalize = pipeline.last_trace.last_normalize_info
        counts = normalize.row_counts if normalize else {}
        result.records = {t: n for t, n in counts.items() if not t.startswith("_dlt")}
        if runtime.interrupted is not None:
            result.status, result.error = "partial", runtime.interrupted
    except PipelineStepFailed as exc:
        result.status = "failed"
        result.error = _canonry_error(exc, connection)
        # The failure was the provider's (or ours), not the destination's: drop the half-extracted
        # package so the next run starts from the last committed state instead of replaying it.
        pipeline.abort_packages()
    result.duration_s = time.perf_counter() - started
    telemetry = runtime.telemetry
    result.calls, result.retries, result.throttled = telemetry.calls, telemetry.retries, telemetry.throttled
    _record(result, connection, started_at, full_refresh, telemetry)
    return result


def _record(result: SyncResult, connection: Connection, started_at: datetime, full_refresh: bool,
            telemetry: Telemetry) -> None:
    conn = connect()
    try:
        error = result.error
        ops.append("sync_runs", [{
            "run_id": result.run_id, "connection_id": connection.id, "provider": connection.provider,
            "started_at": started_at, "finished_at": datetime.now(UTC), "status": result.status,
            "mode": "full" if full_refresh else "auto", "records": result.records, "calls": result.calls,
            "retries": result.retries, "throttled": result.throttled, "duration_s": result.duration_s,
            "load_ids": result.load_ids, "error_class": error.error_class.value if error else None,
            "error_message": str(error) if error else None,
        }], conn)
        state = error.connection_state if error else "active"
        if state:
            ops.set_connection_state(connection.id, state, error.detail if error else None,
                                     error.error_class.value if error else None, conn)
        if error:
            ops.append("sync_errors", [{
                "run_id": result.run_id, "connection_id": connection.id, "provider": connection.provider,
                "endpoint": error.endpoint, "status": error.status, "error_class": error.error_class.value,
                "message": str(error), "occurred_at": datetime.now(UTC),
            }], conn)
        ops.append("api_calls", [{
            "run_id": result.run_id, "connection_id": connection.id, "provider": connection.provider,
            "method": method, "endpoint": endpoint, "calls": s.calls, "retries": s.retries,
            "throttled": s.throttled, "errors": s.errors, "latency_ms": round(s.latency_ms, 2),
            "statuses": {str(k): v for k, v in s.statuses.items()},
        } for (method, endpoint), s in telemetry.by_endpoint.items()], conn)
    finally:
        conn.close()

