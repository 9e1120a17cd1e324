"""One world for the read-API tests: a HubSpot sandbox synced by two tenants' connections (acme, globex),
a Greenhouse sandbox synced for acme, one dbt build of their lineage, and `canonry api serve` running as a
subprocess on 127.0.0.1 (the path a user runs). Built once per session (dbt parse alone is ~20 s):
test_read_api.py and then test_read_api_events.py share it, in file order on one xdist worker
(tests/conftest.py, SHARED_STATE).

The world also has two subscribers of outbound change events (acme) and their baseline, taken right after
the first build, so that the one load between two pages (`mid_walk_load`: contacts created, updated,
deleted) is both what the pagination tests walk through and the changes the event tests receive — one
sync + build instead of two."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from tests.helpers import lineage, mutate, query

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
    subscribers: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # name -> (id, secret, port)

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


@pytest.fixture(scope="session")
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
        world.subscribers = subscribe_for_events(world)
        yield world
    finally:
        world.stop()


def subscribe_for_events(world: ApiWorld) -> dict[str, tuple[str, str, int]]:
    """Two acme subscribers on ports nothing listens on yet (tests/api/test_read_api_events.py starts the
    receivers): `good` (contacts; 4 attempts, 0.2 s first back-off) and `down` (contacts and every CRM delete;
    2 attempts, 0.1 s), then the baseline capture. In process: the CLI's `subscribe` is tested there."""
    from canonry.events.capture import capture
    from canonry.events.subscribers import add_subscriber

    plans = {"good": (["crm.contact.*"], 4, 0.2), "down": (["crm.contact.*", "crm.*.deleted"], 2, 0.1)}
    out = {}
    with world.environment():
        for name, (events, attempts, backoff) in plans.items():
            port = free_port()
            entry, secret = add_subscriber("acme", f"http://127.0.0.1:{port}/hook", events, max_attempts=attempts,
                                           backoff_seconds=backoff)
            out[name] = (entry.subscriber_id, secret, port)
        assert capture().baseline
    return out


def walk(api_world: ApiWorld, path: str, key: str, cursor: str | None = None, **params) -> list[dict]:
    """Every record of a listing, page after page."""
    rows = []
    while True:
        response = api_world.get(path, key, **params, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body["results"]
        cursor = body["next"]
        if cursor is None:
            return rows


@dataclass
class MidWalkLoad:
    at_start: set[str]       # acme's contacts (not deleted) before the load
    after_load: set[str]
    deleted: dict[str, str]  # canonical id -> remote id of acme's deleted contacts after the load
    changed: dict[str, list[str]]
    before: datetime         # a time before the load
    served: list[str]        # ids served by one walk over all pages, the load landing after its first page


def _contacts(api_world: ApiWorld) -> list[dict]:
    with api_world.environment():
        return query("select contact_id as id, remote_id, is_deleted from canonical.crm_contacts "
                     "where tenant_id = 'acme'")


@pytest.fixture(scope="session")
def mid_walk_load(api_world) -> MidWalkLoad:
    """A walk over /v1/crm/contacts (7 per page) with a sync + dbt build landing after its first page: new
    contacts, changed ones and deleted ones."""
    key, path = api_world.keys["acme"], "/v1/crm/contacts"
    at_start = {r["id"] for r in _contacts(api_world) if not r["is_deleted"]}
    first = api_world.get(path, key, limit=7).json()
    before = datetime.now(UTC)
    changed = mutate(api_world.servers["hubspot"], "contacts", create=12, update=8, delete=2)
    api_world.sync_and_build("hubspot-acme")
    rows = _contacts(api_world)
    served = [row["contact_id"] for row in first["results"]]
    served += [row["contact_id"] for row in walk(api_world, path, key, limit=7, cursor=first["next"])]
    return MidWalkLoad(at_start, {r["id"] for r in rows if not r["is_deleted"]},
                       {r["id"]: r["remote_id"] for r in rows if r["is_deleted"]}, changed, before, served)
