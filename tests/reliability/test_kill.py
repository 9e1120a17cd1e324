"""Kill test: a sync subprocess SIGKILLed at random points (mid-extract, mid-normalize, mid-load, between
checkpoints), then re-run, ends equal to the sandbox's truth: nothing lost, nothing duplicated. The
sandbox runs in this test process, so it outlives every killed sync."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from canonry.sandbox import SIMULATORS
from canonry.warehouse import PROJECT_ROOT
from sources import PROVIDERS
from tests.helpers import mutate, query, request_log, set_faults
from tests.reliability.providers import TRUTH, assert_equals_truth, build_canonical

KILLS = 5


def _start_sync(config, connection_id: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "CANONRY_CHECKPOINT_PAGES": "3"}
    return subprocess.Popen([sys.executable, "-m", "canonry.cli", "sync", "--config", str(config),
                             "-c", connection_id, "--no-transform"], env=env, cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _api_requests(server) -> int:
    return sum(1 for r in request_log(server) if not r["path"].startswith("/_sandbox"))


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_sigkill_at_random_points_then_rerun_equals_truth(provider, data_dir, tmp_path, sandbox_factory,
                                                          connect_sandbox, monkeypatch):
    assert provider in SIMULATORS and provider in TRUTH, f"add a row for {provider} to TRUTH"
    case = TRUTH[provider]
    rng = random.Random(f"kill-{provider}")
    server = sandbox_factory(provider, scale=max(case.scale, 600))
    connection = case.connect(server, connect_sandbox, monkeypatch, case.connection_id or f"{provider}-kill")
    config = tmp_path / "connections.yml"
    set_faults(server, latency_ms=25)  # widen the windows between the steps a kill can land in

    killed_while_running = 0
    for kill in range(KILLS):
        seen = _api_requests(server)
        process = _start_sync(config, connection.id)
        # Kill after a random number of new API requests plus a random delay: lands in extraction, or
        # (with the delay) in normalisation, loading or between two checkpoints.
        target = seen + rng.randint(1, 10)
        deadline = time.monotonic() + 60
        while _api_requests(server) < target and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 1.2))
        if process.poll() is None:
            killed_while_running += 1
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        if kill == 2:
            for object_name, actions in case.mutations.items():  # the world moves on between attempts
                mutate(server, object_name, seed=case.seed, **actions)

    assert killed_while_running >= KILLS - 1, "the kills should land while the sync is running"
    finished = _start_sync(config, connection.id)
    output, _ = finished.communicate(timeout=180)
    assert finished.returncode == 0, output

    build_canonical()
    assert_equals_truth(server, provider, connection.id)
    # The run that finished recorded its recovery and checkpoints; raw holds no duplicate version twice
    # from one package, and canonical has no duplicate ids (asserted above).
    runs = query("select status, checkpoints from ops.sync_runs where connection_id = ?", [connection.id])
    assert runs and runs[-1]["status"] == "success"
