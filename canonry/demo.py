"""`canonry demo`: local provider sandboxes -> DuckDB -> canonical tables -> validation, with a summary.

The sandboxes run in-process on the loopback ports named in `data/demo-connections.yml`. The first run
is a full sync; later runs are incremental, after the sandboxes simulate a little activity.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from canonry.config import ConnectionsFile, load_connections
from canonry.sandbox import DEFAULT_TOKENS, start_sandbox
from canonry.sandbox.engine import SandboxServer
from canonry.warehouse import PROJECT_ROOT

DEMO_CONFIG = PROJECT_ROOT / "data" / "demo-connections.yml"
DEMO_SEED = 7


def demo_token_env(provider: str) -> str:
    return f"CANONRY_DEMO_{provider.upper()}_TOKEN"


def demo_environment() -> None:
    """The sandboxes' credentials, for the env: references of the demo file (sandbox-only values)."""
    import importlib

    for provider, token in DEFAULT_TOKENS.items():
        os.environ.setdefault(demo_token_env(provider), token)
    for provider in ("salesforce", "lever"):
        module = importlib.import_module(f"canonry.sandbox.{provider}")
        os.environ.setdefault(f"CANONRY_DEMO_{provider.upper()}_CLIENT_SECRET", module.DEFAULT_CLIENT_SECRET)


def authorise_oauth_connections(config: ConnectionsFile, progress: Callable[[str], None]) -> None:
    """Run the real authorization-code + PKCE flow for oauth2 connections that hold no token yet; the
    sandbox's consent page approves at once, and a scripted browser follows its redirect to our callback."""
    import requests

    from canonry.oauth import connect, token_status

    for connection in config.connections:
        if connection.auth.kind != "oauth2" or token_status(connection).get("stored"):
            continue
        progress(f"authorising {connection.id} (OAuth authorization code + PKCE against the sandbox) …")
        connect(connection, browser=lambda url: requests.get(url, timeout=15).raise_for_status(), timeout=30)


@dataclass
class DemoSandboxes:
    servers: dict[str, SandboxServer] = field(default_factory=dict)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def start_demo_sandboxes(config: ConnectionsFile, scale: int, seed: int = DEMO_SEED) -> DemoSandboxes:
    """One sandbox per provider on the port its demo connection names; credentials into the environment."""
    sandboxes = DemoSandboxes()
    for connection in config.connections:
        if connection.provider in sandboxes.servers:
            continue
        port = urlsplit(connection.base_url or "").port or 0
        token = DEFAULT_TOKENS.get(connection.provider, f"sandbox-{connection.provider}-token")
        try:
            sandboxes.servers[connection.provider] = start_sandbox(connection.provider, seed=seed, scale=scale,
                                                                   port=port, token=token)
        except OSError as exc:
            sandboxes.stop()
            raise RuntimeError(
                f"cannot start the {connection.provider} sandbox on 127.0.0.1:{port} ({exc.strerror}); "
                "another demo or `make ui` is probably running — stop it and retry") from None
    return sandboxes


def simulate_activity(sandboxes: DemoSandboxes, changes: int, seed: int) -> int:
    """Create, update and delete a few records in every sandbox object that supports it."""
    import random

    rng = random.Random(seed)
    touched = 0
    for server in sandboxes.servers.values():
        simulator = server.simulator
        for name in list(simulator.collections):
            for action, count in (("create", changes), ("update", changes), ("delete", max(1, changes // 3))):
                try:
                    touched += len(simulator.mutate(name, action, count, rng, None))
                except (KeyError, ValueError, IndexError, NotImplementedError):
                    break  # reference data with a fixed set of rows (stages, pipelines) is not mutated
    return touched


def demo_config(path: Path | None = None, require_tokens: bool = True) -> ConnectionsFile:
    demo_environment()
    return load_connections(path or DEMO_CONFIG, require_tokens=require_tokens)


@dataclass
class DemoReport:
    syncs: list = field(default_factory=list)
    dbt: object = None
    gate: object = None
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    activity: int = 0


def run_demo(scale: int = 300, seed: int = DEMO_SEED, activity: int = 5,
             progress: Callable[[str], None] = print) -> DemoReport:
    from canonry.pipeline import sync
    from canonry.transform import build
    from canonry.warehouse import connect, warehouse_path
    from expectations.gate import run_gate, tables_fed_by

    report = DemoReport()
    first_run = not warehouse_path().exists()
    config = demo_config(require_tokens=False)
    sandboxes = start_demo_sandboxes(config, scale=scale, seed=seed)
    try:
        authorise_oauth_connections(config, progress)
        config = demo_config()
        if not first_run and activity:
            report.activity = simulate_activity(sandboxes, activity, seed=int(time.time()))
            progress(f"sandboxes simulated {report.activity} record changes since the last run")
        started = time.perf_counter()
        for connection in config.connections:
            progress(f"syncing {connection.id} ({connection.provider}) …")
            result = sync(connection)
            report.syncs.append(result)
            state = "ok" if result.status == "success" else f"FAILED: {result.error}"
            progress(f"  {connection.id}: {sum(result.records.values())} records, {result.calls} API calls, "
                     f"{result.duration_s:.1f}s — {state}")
        report.seconds["extract+load"] = time.perf_counter() - started

        progress("building canonical tables with dbt …")
        started = time.perf_counter()
        report.dbt = build()
        report.seconds["dbt build"] = time.perf_counter() - started

        progress("running the Great Expectations gate …")
        started = time.perf_counter()
        tables = tables_fed_by(sorted({c.provider for c in config.connections}))
        report.gate = run_gate(tables)
        report.seconds["validation"] = time.perf_counter() - started

        conn = connect()
        try:
            for table in tables:
                report.rows[table] = conn.execute(
                    f"select count(*) from canonical.{table} where not is_deleted").fetchone()[0]
        finally:
            conn.close()
    finally:
        sandboxes.stop()
    return report
