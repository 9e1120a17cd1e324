"""Shared fixtures: an isolated data dir per test, sandboxes over real HTTP, connections for them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from canonry.config import ConnectionsFile, load_connections
from canonry.sandbox import DEFAULT_TOKENS, start_sandbox
from canonry.sandbox.engine import SandboxServer


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh CANONRY_DATA_DIR (warehouse, dlt state, dbt target, secrets) for one test."""
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("CANONRY_DATA_DIR", str(path))
    monkeypatch.delenv("CANONRY_WAREHOUSE", raising=False)
    monkeypatch.setenv("CANONRY_KEY_FILE", str(tmp_path / "keys" / "master.key"))
    return path


@pytest.fixture
def sandbox_factory() -> Iterator:
    """start(slug, **options) -> a running SandboxServer, stopped after the test."""
    started: list[SandboxServer] = []

    def start(slug: str, **options) -> SandboxServer:
        server = start_sandbox(slug, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def write_connections(path: Path, connections: list[dict]) -> ConnectionsFile:
    path.write_text(yaml.safe_dump({"connections": connections}, sort_keys=False))
    return load_connections(path)


@pytest.fixture
def connect_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """connect(server, connection_id=..., **overrides) -> a validated Connection pointed at the sandbox,
    its credential in an environment variable (env:CANONRY_TEST_<ID>)."""
    connections: list[dict] = []

    def connect(server: SandboxServer, connection_id: str | None = None, token: str | None = None, **overrides):
        slug = server.simulator.slug
        connection_id = connection_id or f"{slug}-test"
        env_name = "CANONRY_TEST_" + connection_id.upper().replace("-", "_")
        monkeypatch.setenv(env_name, token or DEFAULT_TOKENS.get(slug, f"sandbox-{slug}-token"))
        entry = {"id": connection_id, "tenant": overrides.pop("tenant", "acme"), "provider": slug,
                 "auth": overrides.pop("auth", {"kind": "api_key", "secret": f"env:{env_name}"}),
                 "base_url": server.base_url, **overrides}
        connections.append(entry)
        model = write_connections(tmp_path / "connections.yml", connections)
        return model.get(connection_id)

    return connect

