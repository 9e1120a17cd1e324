"""Tracing: `canonry sync` (the CLI, a real sandbox over HTTP, dlt, dbt, the gate) gives one trace whose span
tree is run → sync → HTTP requests + dlt steps, run → dbt → nodes, run → gate; the trace id is on the
ops.sync_runs row; no span carries the token. Off without an endpoint; exported over OTLP/HTTP with one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from typer.testing import CliRunner

from canonry import tracing
from canonry.cli import app
from tests.helpers import query, set_faults
from tests.observability.servers import serve

runner = CliRunner()
TOKEN = "trace-test-token-5f1c2e9a7b"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    yield exporter
    tracing.use_provider(None)


def test_one_trace_per_run_with_the_expected_span_tree_and_no_token(data_dir, sandbox_factory, connect_sandbox,
                                                                    tmp_path, spans):
    server = sandbox_factory("hubspot", scale=5, token=TOKEN)
    connect_sandbox(server, "hubspot-trace", token=TOKEN, objects=["contacts"])
    set_faults(server, storm_429=1)  # the first request is throttled, then retried
    result = runner.invoke(app, ["sync", "--no-transform", "--config", str(tmp_path / "connections.yml")])
    assert result.exit_code == 0, result.output

    finished = spans.get_finished_spans()
    assert len({s.context.trace_id for s in finished}) == 1
    by_id = {s.context.span_id: s for s in finished}

    def parent(s):
        return by_id[s.parent.span_id].name if s.parent else None

    root = [s for s in finished if s.parent is None]
    assert [s.name for s in root] == ["canonry.run"]
    sync_span = next(s for s in finished if s.name == "canonry.sync")
    assert parent(sync_span) == "canonry.run"
    assert sync_span.attributes["canonry.status"] == "success"
    assert {s.name for s in finished if parent(s) == "canonry.sync"} >= {"dlt extract", "dlt normalize", "dlt load"}
    http = [s for s in finished if "url.template" in s.attributes]
    assert http and all(parent(s) == "canonry.sync" for s in http)
    assert all(s.attributes["canonry.provider"] == "hubspot" for s in http)
    assert all("?" not in s.attributes["url.template"] and "://" not in s.attributes["url.template"] for s in http)
    throttled = [s for s in http if s.attributes.get("canonry.attempts", 1) > 1]
    assert throttled and [e.attributes["http.response.status_code"] for e in throttled[0].events][:2] == [429, 200]

    trace_id = format(sync_span.context.trace_id, "032x")
    assert [r["trace_id"] for r in query("select trace_id from ops.sync_runs")] == [trace_id]
    exported = "\n".join(s.to_json() for s in finished)
    assert TOKEN not in exported and "Bearer" not in exported


def test_tracing_is_off_without_an_endpoint():
    probe = ("import sys; from canonry import tracing\n"
             "with tracing.span('x') as s: assert not s.is_recording()\n"
             "assert tracing.trace_id() is None and 'opentelemetry.sdk' not in sys.modules; print('off')")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "off", out.stderr


def test_spans_are_exported_over_otlp_when_the_endpoint_is_set():
    received: list[tuple[str, str, bytes]] = []

    async def traces(request: Request) -> Response:
        received.append((request.url.path, request.headers["content-type"], await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    probe = ("from canonry import tracing\n"
             "with tracing.span('canonry.run', **{'canonry.command': 'probe'}): pass\n"
             "tracing.shutdown()")
    with serve(Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])) as base_url:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
               "OTEL_EXPORTER_OTLP_ENDPOINT": base_url}
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
    assert len(received) == 1
    path, content_type, body = received[0]
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    assert b"canonry.run" in body and b"probe" in body
    json.dumps(path)  # the receiver got a protobuf body, decoded enough to find the span name


def test_dbt_nodes_are_spans_under_the_dbt_command(data_dir, spans):
    from canonry.transform import run_dbt

    with tracing.span("canonry.run"):
        assert run_dbt(["seed", "--select", "map_ats__phone_type"]).success
    finished = {s.name: s for s in spans.get_finished_spans()}
    command, node = finished["dbt seed"], finished["dbt seed map_ats__phone_type"]
    assert node.parent.span_id == command.context.span_id
    assert command.parent.span_id == finished["canonry.run"].context.span_id
    assert node.attributes["canonry.dbt.status"] == "success" and node.end_time >= node.start_time
