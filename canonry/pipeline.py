"""Runs one connection's sync: its dlt source and pipeline, the load, and the ops records."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dlt
from dlt.pipeline.exceptions import PipelineStepFailed

from canonry import ops, providers, tracing
from canonry.config import Connection
from canonry.errors import CanonryError, ErrorClass
from canonry.governance import audit, dsar
from canonry.http_telemetry import Telemetry
from canonry.logs import log_context
from canonry.oauth_tokens import client_credentials_credential, oauth_credential
from canonry.providers import ProviderSpec
from canonry.runtime import (
    DEFAULT_CHECKPOINT_PAGES,
    DEFAULT_CHECKPOINT_SECONDS,
    RESUME_KEY,
    ConnectionRuntime,
    Credential,
)
from canonry.secrets import SecretNotFound, install_redaction, resolve_secret
from canonry.warehouse import (
    check_warehouse,
    connect,
    pipelines_dir,
    postgres_target,
    postgres_url,
    timeout_seconds,
    warehouse_path,
    writer_lock,
)

log = logging.getLogger("canonry.pipeline")


@dataclass
class SyncResult:
    connection_id: str
    provider: str
    # success | partial (checkpoints committed, then a failure, or a clean stop such as quota_exhausted)
    # | failed (nothing committed)
    status: str
    records: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    retries: int = 0
    throttled: int = 0
    duration_s: float = 0.0
    load_ids: list[str] = field(default_factory=list)
    error: CanonryError | None = None
    run_id: str = ""
    checkpoints: int = 0          # load packages committed by this run (each one: data + state, atomically)
    recovered: list[str] = field(default_factory=list)  # packages of an interrupted run loaded first
    stalled: bool = False         # failed like the previous run without moving its checkpoint
    steps: dict[str, float] = field(default_factory=dict)  # seconds per dlt step, summed over the batches
    trace_id: str | None = None   # the OpenTelemetry trace of the run (None: tracing off)

    @property
    def connection_state(self) -> str:
        """What the connection becomes after this run (taxonomy's `effect` column)."""
        if self.error is None:
            return "active"
        if self.stalled:
            return "failing"
        return self.error.connection_state or "degraded"


def build_credential(connection: Connection) -> Credential:
    auth = connection.auth
    oauth = providers.spec(connection.provider).oauth
    if auth.kind == "client_credentials" and oauth is not None and oauth.client_credentials:
        # The provider mints tokens from client credentials (its spec's oauth.client_credentials). Token
        # endpoint: the provider's (oauth.token_url), or base_url + oauth.token_path when the connection
        # points elsewhere (a sandbox); a `token_endpoint` in the stored JSON wins over both.
        endpoint = oauth.token_url
        if connection.base_url and oauth.token_path:
            endpoint = connection.base_url.rstrip("/") + oauth.token_path
        return client_credentials_credential(connection.id, connection.provider, auth.secret,
                                             client_id=auth.client_id, client_secret_ref=auth.client_secret,
                                             token_endpoint=endpoint, verify=connection.tls_ca or True,
                                             allow_private_network=connection.allow_private_network)
    if auth.kind in ("oauth2", "client_credentials"):
        return oauth_credential(connection.id, connection.provider, auth.secret, auth.client_secret,
                                client_id=auth.client_id, verify=connection.tls_ca or True, params=auth.params,
                                allow_private_network=connection.allow_private_network)
    return Credential(auth.kind, auth.secret, lambda: resolve_secret(auth.secret))


def build_runtime(connection: Connection, *, full_refresh: bool = False) -> ConnectionRuntime:
    spec = providers.spec(connection.provider)
    return ConnectionRuntime(
        connection_id=connection.id, tenant_id=connection.tenant, provider=connection.provider,
        base_url=(connection.base_url or spec.base_url).rstrip("/"),
        credential=build_credential(connection), objects=connection.objects,
        lookback=connection.lookback_delta,
        options={"full_refresh": full_refresh, "full_scan_every": connection.deletes.full_scan_every},
        verify_tls=connection.tls_ca or True,
        allow_private_network=connection.allow_private_network,
        timeout=float(os.environ.get("CANONRY_HTTP_TIMEOUT", "30")),
        concurrent_reads=concurrent_reads(),
    )


def concurrent_reads() -> bool:
    """`CANONRY_CONCURRENT_READS`: `1` (default) lets a source read a connection's objects concurrently within
    its one rate budget; `0` reads them one after another (what the benchmark compares against)."""
    value = os.environ.get("CANONRY_CONCURRENT_READS", "1").strip().lower()
    if value not in ("0", "1", "true", "false"):
        raise CanonryError(ErrorClass.CONFIG_ERROR, f"CANONRY_CONCURRENT_READS={value!r} is not a boolean",
                           hint="set CANONRY_CONCURRENT_READS to 1 (objects read concurrently) or 0 (one at a time)")
    return value in ("1", "true")


LOAD_MEMORY_LIMIT = "256MB"


def dlt_destination():
    """dlt's destination for the warehouse: DuckDB (the file), or PostgreSQL when `CANONRY_WAREHOUSE` is a
    PostgreSQL URL (its password resolved and handed over as a value, never inside a stored URL)."""
    target = postgres_target()
    if target is not None:
        check_warehouse()  # unreachable / refused: a config_error before dlt starts
        credentials = {"drivername": "postgresql", "host": target.host, "port": target.port,
                       "username": target.user, "password": target.password,
                       "database": target.database, "connect_timeout": 15}
        return dlt.destinations.postgres(credentials=credentials)
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    check_warehouse()
    # DuckDB's buffer pool defaults to 80% of RAM and the load connection kept growing with the warehouse
    # (sync peak RSS 1.4 GB at 1M records per object); a bounded pool keeps it flat: 512MB -> 256MB took a
    # 1M-record sync from 993 to 743 MB for ~10% more load time (benchmarks/README.md, tuning 15).
    credentials = DuckDbCredentials(str(warehouse_path()),
                                    global_config={"memory_limit": os.environ.get("CANONRY_LOAD_MEMORY_LIMIT",
                                                                                  LOAD_MEMORY_LIMIT)})
    return dlt.destinations.duckdb(credentials=credentials)


def dlt_pipeline(connection: Connection) -> dlt.Pipeline:
    # Arrow pages skip dlt's row normaliser; ask it to stamp `_dlt_load_id` (lineage to the raw row).
    os.environ["NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"] = "true"
    return dlt.pipeline(
        pipeline_name=f"canonry_{connection.id.replace('-', '_')}",
        pipelines_dir=str(pipelines_dir()),
        destination=dlt_destination(),
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


def checkpoint_pages(connection: Connection | None = None) -> int:
    """Pages a resumable resource yields per load package (per checkpoint): `CANONRY_CHECKPOINT_PAGES`."""
    return max(1, int(os.environ.get("CANONRY_CHECKPOINT_PAGES", DEFAULT_CHECKPOINT_PAGES)))


def checkpoint_seconds() -> float:
    """Seconds of fetching per checkpoint (`CANONRY_CHECKPOINT_SECONDS`): what a killed run can lose."""
    return max(0.0, float(os.environ.get("CANONRY_CHECKPOINT_SECONDS", DEFAULT_CHECKPOINT_SECONDS)))


MAX_BATCHES = 100_000


def resource_states(pipeline: dlt.Pipeline, source_name: str) -> dict[str, dict]:
    """The committed dlt state of every resource of a source (cursors, checkpoints)."""
    return dict(pipeline.state.get("sources", {}).get(source_name, {}).get("resources", {}))


def _positions(pipeline: dlt.Pipeline, source_name: str, names: set[str]) -> dict[str, str]:
    return {name: json.dumps(state[RESUME_KEY], sort_keys=True, default=str)
            for name, state in resource_states(pipeline, source_name).items()
            if name in names and state.get(RESUME_KEY) is not None}


def sync(connection: Connection, *, full_refresh: bool = False,
         on_start: Callable[[ConnectionRuntime], None] | None = None,
         pages_per_checkpoint: int | None = None) -> SyncResult:
    """Sync one connection into raw_<provider> (see `_sync`), in a `canonry.sync` span: its HTTP requests and
    dlt steps are child spans; the trace id is stored on the ops.sync_runs row."""
    run_id = uuid.uuid4().hex[:12]
    with tracing.span("canonry.sync", **{"canonry.connection_id": connection.id, "canonry.run_id": run_id,
                                         "canonry.provider": connection.provider,
                                         "canonry.full_refresh": full_refresh}) as current, \
            log_context(run_id=run_id, connection_id=connection.id, provider=connection.provider):
        log.info("sync started (%s)", "full refresh" if full_refresh else "incremental")
        result = _recorded_sync(connection, run_id, full_refresh=full_refresh, on_start=on_start,
                                pages_per_checkpoint=pages_per_checkpoint)
        log.log(logging.WARNING if result.error else logging.INFO,
                "sync %s: %d records, %d API calls, %d retries, %.1fs%s", result.status,
                sum(result.records.values()), result.calls, result.retries, result.duration_s,
                f" — {result.error}" if result.error else "")
        current.set_attribute("canonry.status", result.status)
        current.set_attribute("canonry.calls", result.calls)
        current.set_attribute("canonry.records", sum(result.records.values()))
        if result.error is not None:
            current.set_attribute("canonry.error_class", result.error.error_class.value)
            current.set_status(tracing.trace.StatusCode.ERROR, result.error.error_class.value)
        return result


def _recorded_sync(connection: Connection, run_id: str, *, full_refresh: bool = False,
                   on_start: Callable[[ConnectionRuntime], None] | None = None,
                   pages_per_checkpoint: int | None = None) -> SyncResult:
    """Sync one connection into raw_<provider>; never raises for provider failures (see result.error).

    Checkpoints: resources listed in the provider's `SPEC.resumable` take at most
    `pages_per_checkpoint` pages and `checkpoint_seconds()` of fetching per batch (`runtime.page_budget()`),
    keeping where to continue in their resource state
    (`state["resume"]`, see docs/DEVELOPING.md); dlt commits that state in the same load package as the
    pages, so a run killed at any point resumes from its last committed package. The pipeline runs
    batches until no resource has a `resume` left. A package left by a killed run (extracted or
    normalised, with the state that goes with it) is loaded first: it is complete and consistent.

    Concurrency: extraction and normalisation run without the warehouse; each load (and each ops write)
    holds the warehouse writer lock (`canonry.warehouse.writer_lock`), so on DuckDB concurrent syncs load
    one at a time. The run is recorded `running` (with its pid) when it starts and its row is updated
    after each checkpoint; a run whose process is gone is marked `killed` by the next one.
    """
    install_redaction()
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    conn = connect(purpose=f"sync of {connection.id} (start)")
    try:
        ops.mark_killed_runs(conn)
        ops.upsert_connection(connection.id, connection.tenant, connection.provider, conn)
        ops.start_run(run_id, connection.id, connection.provider, started_at,
                      "full" if full_refresh else "auto", conn)
    finally:
        conn.close()
    result = SyncResult(connection.id, connection.provider, "success", run_id=run_id, trace_id=tracing.trace_id())
    try:
        return _sync(connection, result, full_refresh, on_start, pages_per_checkpoint, started_at, started)
    except BaseException as exc:
        # A bug or an interrupt (Ctrl-C): the run is still recorded (its `running` row replaced), then raised.
        if not result.duration_s:
            result.error = _canonry_error(exc, connection)
            result.status = "partial" if result.load_ids else "failed"
            result.duration_s = time.perf_counter() - started
            _record(result, connection, started_at, full_refresh, Telemetry())
        raise


def _sync(connection: Connection, result: SyncResult, full_refresh: bool,
          on_start: Callable[[ConnectionRuntime], None] | None, pages_per_checkpoint: int | None,
          started_at: datetime, started: float) -> SyncResult:
    telemetry = Telemetry()
    runtime: ConnectionRuntime | None = None
    try:
        if postgres_url():
            from canonry.postgres import require_portable

            require_portable(connection.provider, connection.id)
        runtime = build_runtime(connection, full_refresh=full_refresh)
        telemetry = runtime.telemetry
        # Fail fast, before dlt starts, when the credential is dead (needs_reauth) or not ours.
        runtime.credential.value()
        if on_start:
            on_start(runtime)
        module = providers.source_module(connection.provider)
        spec = providers.spec(connection.provider)
        pipeline = dlt_pipeline(connection)
    except SecretNotFound as exc:
        result.error = CanonryError(ErrorClass.CONFIG_ERROR, f"the credential does not resolve: {exc}",
                                    provider=connection.provider, connection_id=connection.id, hint=exc.hint)
    except CanonryError as exc:
        result.error = exc
    else:
        _run_batches(pipeline, module, spec, runtime, result,
                     pages_per_checkpoint or checkpoint_pages(connection))
    if result.error is not None:
        interrupted = runtime is not None and result.error is runtime.interrupted
        result.status = "partial" if (result.load_ids or interrupted) else "failed"
    result.duration_s = time.perf_counter() - started
    result.calls, result.retries, result.throttled = telemetry.calls, telemetry.retries, telemetry.throttled
    _record(result, connection, started_at, full_refresh, telemetry)
    # Alert rules (alerts.yml) are evaluated after every recorded run; a no-op without a rules file.
    from canonry.alerting import after_run

    after_run(result.run_id)
    return result


def sync_many(connections: list[Connection], **kwargs) -> list[SyncResult]:
    """Sync several connections one after another; one connection's failure never stops the others."""
    results = []
    for connection in connections:
        try:
            results.append(sync(connection, **kwargs))
        except Exception as exc:  # noqa: BLE001 - a bug in one source must not stop the other connections
            error = _canonry_error(exc, connection)
            results.append(SyncResult(connection.id, connection.provider, "failed", error=error))
    return results


def _run_batches(pipeline: dlt.Pipeline, module, spec: ProviderSpec, runtime: ConnectionRuntime,
                 result: SyncResult, pages: int) -> None:
    source_name = runtime.provider
    resumable = set(spec.resumable)
    try:
        with _warehouse_step(pipeline, runtime, "state"):
            pipeline.sync_destination()   # what `pipeline.run` does first: the destination's state if newer
        if pipeline.has_pending_data:
            # A run was killed (or its load failed) after its package was extracted: that package holds
            # pages *and* the state that follows them, so loading it loses and duplicates nothing.
            result.recovered = _normalize_and_load(pipeline, runtime, result)
        erased = _tombstones(runtime.connection_id)
        selected: list[str] | None = None
        previous: dict[str, str] = {}
        for _ in range(MAX_BATCHES):
            source = module.source(runtime)
            if selected is not None:
                source = source.with_resources(*selected, *_transformers_of(source, selected))
            names = set(source.selected_resources)
            dsar.drop_tombstoned(source, erased)  # people erased on request stay erased (canonry dsar erase)
            if postgres_url():
                _skip_empty_pages(source)
            runtime.checkpoint_pages = pages
            runtime.checkpoint_deadline = time.monotonic() + checkpoint_seconds()
            began = time.perf_counter()
            pipeline.extract(source, loader_file_format="parquet")
            _add_step(result, "extract", began)
            _normalize_and_load(pipeline, runtime, result)
            if runtime.interrupted is not None:
                # The source stopped cleanly at a checkpoint (e.g. quota_exhausted): what it yielded is
                # committed; the next run continues from there.
                result.error = runtime.interrupted
                return
            positions = _positions(pipeline, source_name, names & resumable)
            if not positions:
                return
            stuck = sorted(n for n, p in positions.items() if previous.get(n) == p)
            if stuck:
                raise CanonryError(ErrorClass.PROVIDER_CONTRACT,
                                   f"checkpoint of {', '.join(stuck)} did not move in a whole batch "
                                   f"(a page that yields nothing and never ends): stopped instead of looping",
                                   provider=runtime.provider, connection_id=runtime.connection_id)
            previous, selected = positions, sorted(positions)
    except PipelineStepFailed as exc:
        result.error = _canonry_error(exc, runtime_connection(runtime))
        if exc.step == "extract":
            # The failure was the provider's (or the source's): the half-extracted package is dropped,
            # the state stays at the last committed checkpoint, and the next run continues from there.
            pipeline.abort_packages()
        # A normalize/load failure keeps its (complete) package: the next run loads it first.
    except CanonryError as exc:
        result.error = exc


def _transformers_of(source, parents: list[str]) -> list[str]:
    """Transformers fed by the resources a batch re-runs: without them the children of the pages in the next
    checkpoint would never be read. (No source uses one today: Lever reads its children inside the pass.)"""
    return [name for name, resource in source.resources.items()
            if resource.is_transformer and resource._pipe.parent is not None
            and resource._pipe.parent.name in parents]


def _tombstones(connection_id: str) -> dict[str, set[str]]:
    conn = connect(purpose=f"sync of {connection_id} (tombstones)")
    try:
        return dsar.tombstones(conn, connection_id)
    finally:
        conn.close()


def _normalize_and_load(pipeline: dlt.Pipeline, runtime: ConnectionRuntime, result: SyncResult) -> list[str]:
    """Normalise the extracted packages (no warehouse needed), then load them holding the writer lock;
    the run's ops row is updated in the same hold (its last checkpoint, should the process be killed)."""
    if pipeline.list_extracted_load_packages():
        began = time.perf_counter()
        info = pipeline.normalize()
        _add_step(result, "normalize", began)
        for table, count in info.row_counts.items():
            if not table.startswith("_dlt"):
                result.records[table] = result.records.get(table, 0) + count
    if not pipeline.list_normalized_load_packages():
        return []
    with _warehouse_step(pipeline, runtime, "load"):
        began = time.perf_counter()
        info = pipeline.load()
        _add_step(result, "load", began)
        loads = [i for i in info.loads_ids if i not in result.load_ids]
        result.load_ids.extend(loads)
        result.checkpoints += len(loads)
        conn = connect(purpose=f"sync of {runtime.connection_id} (load)")
        try:
            ops.update_run(result.run_id, conn, checkpoints=result.checkpoints, load_ids=result.load_ids,
                           records=result.records)
        finally:
            conn.close()
    return loads


@contextmanager
def _warehouse_step(pipeline: dlt.Pipeline, runtime: ConnectionRuntime, step: str) -> Iterator[None]:
    """Around a dlt step that writes the warehouse: DuckDB's writer lock (one writer process); on PostgreSQL
    the raw dataset's DDL lock instead, since dlt may create or alter the dataset's tables in the step and
    two connections of one provider (`sync --jobs N`, Dagster steps) share the dataset."""
    with writer_lock(f"sync of {runtime.connection_id} ({step})"):
        target = postgres_target()
        if target is None:
            yield
            return
        from canonry.postgres import ddl_lock

        with ddl_lock(target, pipeline.dataset_name, timeout_s=timeout_seconds()):
            yield


def _add_step(result: SyncResult, step: str, began: float) -> None:
    """Add a dlt step's seconds to the run, and the step as a span of the run's trace."""
    seconds = time.perf_counter() - began
    result.steps[step] = round(result.steps.get(step, 0.0) + seconds, 4)
    finished = time.time()
    tracing.completed_span(f"dlt {step}", finished - seconds, finished, **{"canonry.run_id": result.run_id})


def _non_empty(item) -> bool:
    return getattr(item, "num_rows", 1) > 0


def _skip_empty_pages(source) -> None:
    """Drop 0-row arrow pages (e.g. a page of versions already loaded): dlt's PostgreSQL parquet job (ADBC)
    fails on a parquet file with no row group ("Must pass schema, or at least one RecordBatch")."""
    for resource in source.selected_resources.values():
        resource.add_filter(_non_empty)


def runtime_connection(runtime: ConnectionRuntime) -> Connection:
    return Connection.model_construct(id=runtime.connection_id, provider=runtime.provider,
                                      tenant=runtime.tenant_id)


def _previous_run(conn, connection_id: str) -> dict | None:
    ops.ensure_tables(conn)
    row = conn.execute("""select status, error_class, error_endpoint, load_ids from ops.sync_runs
                          where connection_id = ? and status <> 'running'
                          order by finished_at desc limit 1""", [connection_id]).fetchone()
    if row is None:
        return None
    return {"status": row[0], "error_class": row[1], "error_endpoint": row[2],
            "progressed": bool(json.loads(row[3] or "[]"))}


def _record(result: SyncResult, connection: Connection, started_at: datetime, full_refresh: bool,
            telemetry: Telemetry) -> None:
    conn = connect(purpose=f"sync of {connection.id} (record)")
    try:
        error = result.error
        previous = _previous_run(conn, connection.id)
        if error is not None and not result.load_ids and previous is not None:
            # Stalled: this run and the one before failed the same way and neither moved the checkpoint.
            result.stalled = (previous["status"] in ("failed", "stalled") and not previous["progressed"]
                              and previous["error_class"] == error.error_class.value
                              and previous["error_endpoint"] == error.endpoint)
        finished = datetime.now(UTC)
        conn.execute("delete from ops.sync_runs where run_id = ?", [result.run_id])  # its `running` row
        ops.append("sync_runs", [{
            "run_id": result.run_id, "connection_id": connection.id, "provider": connection.provider,
            "started_at": started_at, "finished_at": finished,
            "status": "stalled" if result.stalled else result.status,
            "mode": "full" if full_refresh else "auto", "records": result.records, "calls": result.calls,
            "retries": result.retries, "throttled": result.throttled, "duration_s": result.duration_s,
            "load_ids": result.load_ids, "error_class": error.error_class.value if error else None,
            "error_message": str(error) if error else None, "error_endpoint": error.endpoint if error else None,
            "checkpoints": result.checkpoints, "recovered": result.recovered, "stalled": result.stalled,
            "connection_state": result.connection_state, "pid": os.getpid(), "host": socket.gethostname(),
            "error_classes": sorted({e.error_class for e in telemetry.error_events}
                                    | ({error.error_class.value} if error else set())),
            "trace_id": result.trace_id,
        }], conn)
        rows = [{
            "run_id": result.run_id, "connection_id": connection.id, "provider": connection.provider,
            "endpoint": e.endpoint, "status": e.status, "error_class": e.error_class, "message": e.message,
            "occurred_at": datetime.fromtimestamp(e.at, UTC), "retried": e.retried, "final": False,
        } for e in telemetry.error_events if e.retried]
        # The lifecycle state (ops.connection_state): active after a success, the error class's state
        # after a failure (transient/rate_limited leave it unchanged), failing when stalled.
        state = "failing" if result.stalled else (error.connection_state if error else "active")
        if state:
            ops.set_connection_state(connection.id, state, error.detail if error else None,
                                     error.error_class.value if error else None, conn)
        if error:
            rows.append({
                "run_id": result.run_id, "connection_id": connection.id, "provider": connection.provider,
                "endpoint": error.endpoint, "status": error.status, "error_class": error.error_class.value,
                "message": str(error), "occurred_at": finished, "retried": False, "final": True,
            })
        ops.append("sync_errors", rows, conn)
        audit.record("sync", connection.id, conn, records=sum(result.records.values()), tenant_id=connection.tenant,
                     run_id=result.run_id, provider=connection.provider, objects=result.records,
                     status=result.status, into=f"raw_{connection.provider}")
        ops.append("api_calls", [{
            "run_id": result.run_id, "connection_id": connection.id, "provider": connection.provider,
            "method": method, "endpoint": endpoint, "status": status or None, "attempt": attempt,
            "calls": s.calls, "retries": s.calls if attempt > 1 else 0,
            "throttled": s.throttled,
            "errors": s.calls if (not status or status >= 400) else 0,
            "latency_ms": round(s.latency_ms, 2), "latency_max_ms": round(s.latency_max_ms, 2),
            "statuses": {str(status): s.calls},
        } for (method, endpoint, status, attempt), s in sorted(telemetry.by_attempt.items())], conn)
    finally:
        conn.close()
