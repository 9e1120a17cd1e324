"""One synced world for the rollout tests (package scope, one xdist unit, file order): two Greenhouse
sandboxes over real HTTP (connections greenhouse-acme and greenhouse-beta), synced once through the CLI with
the canonical build and the gate; every test then changes a copy of the dbt project, never dbt/ itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from canonry.sandbox import DEFAULT_TOKENS, start_sandbox
from canonry.sandbox.engine import SandboxServer
from canonry.transform import DBT_DIR

SCALE = 30
CONNECTIONS = {"greenhouse-acme": 1, "greenhouse-beta": 8}   # connection id -> sandbox seed


@dataclass
class World:
    tmp: Path
    config: Path
    servers: dict[str, SandboxServer]

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """`canonry ...` as the user runs it: a subprocess, on this world's data dir and connections."""
        return subprocess.run([sys.executable, "-m", "canonry.cli", *args], capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "200"}, timeout=600)

    def project_copy(self, name: str) -> Path:
        """A copy of the checkout's dbt project to change (as a branch would)."""
        target = self.tmp / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(DBT_DIR, target, ignore=shutil.ignore_patterns("target", "logs", ".user.yml"))
        return target


@pytest.fixture(scope="package")
def world(tmp_path_factory) -> World:
    tmp = tmp_path_factory.mktemp("rollout")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CANONRY_DATA_DIR", str(tmp / "data"))
        mp.delenv("CANONRY_WAREHOUSE", raising=False)
        mp.delenv("CANONRY_DBT_TARGET_PATH", raising=False)
        mp.setenv("CANONRY_KEY_FILE", str(tmp / "keys" / "master.key"))
        mp.setenv("ROLLOUT_GREENHOUSE_TOKEN", DEFAULT_TOKENS["greenhouse"])
        servers = {cid: start_sandbox("greenhouse", scale=SCALE, seed=seed) for cid, seed in CONNECTIONS.items()}
        try:
            entries = [{"id": cid, "tenant": cid.split("-")[1], "provider": "greenhouse",
                        "auth": {"kind": "client_credentials", "secret": "env:ROLLOUT_GREENHOUSE_TOKEN"},
                        "base_url": server.base_url, "schedule": "0 * * * *"} for cid, server in servers.items()]
            config = tmp / "connections.yml"
            config.write_text(yaml.safe_dump({"connections": entries}, sort_keys=False))
            mp.setenv("CANONRY_CONFIG", str(config))
            world = World(tmp, config, servers)
            synced = world.cli("sync")
            assert synced.returncode == 0, synced.stdout + synced.stderr
            yield world
        finally:
            for server in servers.values():
                server.stop()
