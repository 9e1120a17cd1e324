"""OpenTelemetry traces of a run: run → sync (per connection) → HTTP requests → dlt extract/normalize/load →
dbt nodes → validation gate → push.

Export is on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: an OTLP/HTTP
exporter configured by the standard `OTEL_*` variables, batched. Otherwise no SDK is installed and every span
is OpenTelemetry's non-recording no-op (no allocation of attributes, no export): tracing costs nothing.
A provider set by the host process (`opentelemetry.trace.set_tracer_provider`) or by `use_provider` (tests)
is used as is.

What a span may carry is chosen here: provider, connection id, endpoint *templates* (`/crm/v3/objects/{id}`),
status codes, attempt numbers, error classes, counts. Never a URL, a query string, a header or a message
that did not pass the redaction filter.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

SERVICE_NAME = "canonry"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_lock = threading.Lock()
_provider: Any = None
_configured = False


def use_provider(provider: Any) -> None:
    """Send canonry's spans to this TracerProvider (None: back to the environment's choice)."""
    global _provider, _configured
    with _lock:
        _provider, _configured = provider, provider is not None


def _configure() -> None:
    global _provider, _configured
    with _lock:
        if _configured:
            return
        _configured = True
        if not any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
            return
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get(
            "OTEL_SERVICE_NAME", SERVICE_NAME)}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _provider = provider


def tracer() -> trace.Tracer:
    _configure()
    return (_provider or trace.get_tracer_provider()).get_tracer("canonry")


def shutdown() -> None:
    """Flush spans at the end of a command (the batch processor exports in the background)."""
    if _provider is not None and hasattr(_provider, "force_flush"):
        _provider.force_flush(5000)


def traced(name: str, **attributes: Any) -> Callable:
    """Decorator: the function runs in a span (a command's root span: one trace per run), spans flushed after."""
    def wrap(function: Callable) -> Callable:
        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                with span(name, **attributes):
                    return function(*args, **kwargs)
            finally:
                shutdown()
        return run
    return wrap


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A span under the current one (a new trace when there is none). An exception is recorded by its type
    only: its message or traceback could quote a URL with its query string."""
    with tracer().start_as_current_span(name, attributes=_clean(attributes), record_exception=False,
                                        set_status_on_exception=False) as current:
        try:
            yield current
        except BaseException as exc:
            if current.is_recording():
                current.set_attribute("error.type", type(exc).__name__)
                current.set_status(trace.StatusCode.ERROR, type(exc).__name__)
            raise


def trace_id(current: trace.Span | None = None) -> str | None:
    """The hex trace id of a (recording) span, None when tracing is off."""
    context = (current or trace.get_current_span()).get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None}


def _ns(moment: datetime | float) -> int:
    if isinstance(moment, datetime):
        # dbt's and dlt's naive timestamps are UTC
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return int(moment * 1e9)


def completed_span(name: str, started: datetime | float, finished: datetime | float, **attributes: Any) -> None:
    """A span for work already done (dlt steps, dbt nodes), timed by its own clock, under the current span."""
    done = tracer().start_span(name, start_time=_ns(started), attributes=_clean(attributes))
    done.end(end_time=_ns(finished))


def attempt(status: int | None, attempt_number: int, latency_ms: float) -> None:
    """One HTTP attempt, as an event of the current request span (no-op when not recording)."""
    current = trace.get_current_span()
    if current.is_recording():
        current.add_event("attempt", {"http.response.status_code": status or 0, "canonry.attempt": attempt_number,
                                      "canonry.latency_ms": round(latency_ms, 2)})
        current.set_attribute("canonry.attempts", attempt_number)
