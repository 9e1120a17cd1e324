"""One world for the read-API tests: a HubSpot sandbox synced by two tenants' connections (acme, globex),
a Greenhouse sandbox synced for acme, one dbt build of their lineage, and `canonry api serve` running as a
subprocess on 127.0.0.1 (the path a user runs). Built once per module (dbt parse alone is ~20 s), so these
tests share it and run in file order on one xdist worker (tests/conftest.py, SHARED_STATE)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

from canonry.config import ConnectionsFile
from canonry.pipeline import sync
from canonry.sandbox import DEFAULT_TOKENS, start_sandbox
from canonry.sandbox.engine import SandboxServer
from canonry.transform import run_dbt
from canonry.validation import load_connections
from tests.conftest import _close_dbt_duckdb_environment as close_dbt_duckdb_environment
from tests.helpers import lineage

SCALE = 25


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ApiWorld:
    root: Path
    env: dict[str, str]
    servers: dict[str, SandboxServer]
    connections: ConnectionsFile
    base_url: str = ""
    process: subprocess.Popen | None = None
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return Path(self.env["CANONRY_DATA_DIR"])

    @contextmanager
    def environment(self) -> Iterator[None]:
        """This world's data dir for in-process calls (warehouse queries, syncs)."""
        with pytest.MonkeyPatch.context() as mp:
            for name, value in self.env.items():
                mp.setenv(name, value)
            mp.delenv("CANONRY_WAREHOUSE", raising=False)
            yield

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "canonry.cli", *args], env={**os.environ, **self.env},
                                capture_output=True, text=True, timeout=120)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def create_key(self, tenant: str, *options: str) -> str:
        return self.cli("api", "keys", "create", "--tenant", tenant, *options).stdout.strip()

    def get(self, path: str, key: str | None = None, **params) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return requests.get(self.base_url + path, params=params, headers=headers, timeout=30)

    def sync_and_build(self, *connection_ids: str) -> None:
        with self.environment():
            for connection in self.connections.connections:
                if connection.id in connection_ids:
                    result = sync(connection)
                    assert result.status == "success", result.error
            providers = sorted({c.provider for c in self.connections.connections if c.id in connection_ids})
            try:
                built = run_dbt(["build", "--select", *lineage(*providers), "--exclude-resource-type", "test"])
            finally:
                # dbt-duckdb keeps the warehouse open in this process after a build: a writer's hold, which
                # the server (another process) rightly answers with 503 until it is closed.
                close_dbt_duckdb_environment()
            assert built.success, (built.error, built.failures())

    def start_server(self) -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "canonry.cli", "api", "serve", "--port", str(port), "--no-access-log"],
            env={**os.environ, **self.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read()
            try:
                requests.get(self.base_url + "/openapi.json", timeout=1).raise_for_status()
                return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError("canonry api serve did not answer within 30 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="module")
def api_world(tmp_path_factory) -> Iterator[ApiWorld]:
    root = tmp_path_factory.mktemp("api")
    env = {"CANONRY_DATA_DIR": str(root / "data"), "CANONRY_KEY_FILE": str(root / "keys" / "master.key"),
           "API_TEST_HUBSPOT_TOKEN": DEFAULT_TOKENS["hubspot"],
           "API_TEST_GREENHOUSE_SECRET": DEFAULT_TOKENS["greenhouse"]}
    servers = {slug: start_sandbox(slug, scale=SCALE) for slug in ("hubspot", "greenhouse")}
    hubspot_auth = {"kind": "api_key", "secret": "env:API_TEST_HUBSPOT_TOKEN"}
    entries = [
        {"id": "hubspot-acme", "tenant": "acme", "provider": "hubspot", "auth": hubspot_auth,
         "base_url": servers["hubspot"].base_url},
        {"id": "hubspot-globex", "tenant": "globex", "provider": "hubspot", "auth": hubspot_auth,
         "base_url": servers["hubspot"].base_url},
        {"id": "greenhouse-acme", "tenant": "acme", "provider": "greenhouse",
         "auth": {"kind": "client_credentials", "secret": "env:API_TEST_GREENHOUSE_SECRET"},
         "base_url": servers["greenhouse"].base_url},
    ]
    path = root / "connections.yml"
    path.write_text(yaml.safe_dump({"connections": entries}, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        world = ApiWorld(root, env, servers, load_connections(path))
    try:
        world.sync_and_build("hubspot-acme", "hubspot-globex", "greenhouse-acme")
        world.start_server()
        world.keys = {"acme": world.create_key("acme"), "globex": world.create_key("globex")}
        yield world
    finally:
        world.stop()
