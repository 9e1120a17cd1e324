"""Structured logs through the CLI (a subprocess, a real sandbox): `--log-format json` gives one JSON object per
line with run id, connection, provider and the trace id stored on ops.sync_runs; the token appears nowhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from tests.helpers import query
from tests.observability.servers import serve

TOKEN = "log-test-token-8d2b41c9e0"


async def _accept(request):
    await request.body()
    return Response(b"", media_type="application/x-protobuf")


def test_json_logs_carry_run_connection_provider_and_trace_id(data_dir, sandbox_factory, connect_sandbox, tmp_path):
    server = sandbox_factory("hubspot", scale=5, token=TOKEN)
    connect_sandbox(server, "hubspot-logs", token=TOKEN, objects=["contacts"])
    with serve(Starlette(routes=[Route("/v1/traces", _accept, methods=["POST"])])) as otlp:
        env = {**os.environ, "CANONRY_LOG_FORMAT": "json", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp}
        out = subprocess.run([sys.executable, "-m", "canonry.cli", "sync", "--no-transform",
                              "--config", str(tmp_path / "connections.yml")],
                             env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    ours = [line for line in lines if line["logger"].startswith("canonry")]
    assert [line["message"].split(":")[0] for line in ours] == ["sync started (incremental)", "sync success"]
    run = query("select run_id, trace_id from ops.sync_runs")[0]
    assert run["trace_id"] and len(run["trace_id"]) == 32
    for line in ours:
        assert (line["run_id"], line["connection_id"], line["provider"], line["trace_id"]) == (
            run["run_id"], "hubspot-logs", "hubspot", run["trace_id"])
    assert TOKEN not in out.stderr and TOKEN not in out.stdout

    bad = subprocess.run([sys.executable, "-m", "canonry.cli", "--log-format", "xml", "status"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "unknown log format 'xml'" in bad.stderr
