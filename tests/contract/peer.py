"""Runs a client we did not write, in its own cached venv (canonry.peers), against a sandbox.

Each peer is declared as data: its venv name, its pinned requirements and the script (under
tests/contract/peers/) that drives it. A script imports nothing from Canonry; it is given the sandbox's
base URL and a token (only the base URL differs from a real run) and prints what the client read, as
JSON on stdout, or as Singer messages for a Singer tap.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from canonry.peers import ensure_peer_venv

PEER_SCRIPTS = Path(__file__).parent / "peers"


@dataclass(frozen=True)
class Peer:
    venv: str
    requirements: tuple[str, ...]
    script: str


PEERS: dict[str, Peer] = {
    # Community SDK (no official Python SDK exists): thin wrapper of the v1 API.
    "pipedrive-python-lib": Peer("pipedrive-python-lib", ("pipedrive-python-lib==1.2.3",), "run_pipedrive_python_lib.py"),
    # Community SDK for Ashby's RPC API (Ashby publishes none).
    "ashby": Peer("ashby-sdk", ("ashby==0.4.1",), "run_ashby_sdk.py"),
    # Singer.io's tap (maintained by Stitch/Talend) for Lever.
    "tap-lever": Peer("tap-lever", ("tap-lever==1.1.0",), "run_tap_lever.py"),
}


def run_peer(name: str, *args: str, timeout: float = 120) -> str:
    """The peer's stdout; fails with its stderr when it exits non-zero."""
    peer = PEERS[name]
    python = ensure_peer_venv(peer.venv, peer.requirements)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CANONRY_"))}
    completed = subprocess.run([str(python), str(PEER_SCRIPTS / peer.script), *args], capture_output=True,
                               text=True, timeout=timeout, env=env)
    assert completed.returncode == 0, f"{name} failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}"
    return completed.stdout


def run_peer_json(name: str, *args: str, timeout: float = 120):
    return json.loads(run_peer(name, *args, timeout=timeout))


def singer_records(stdout: str) -> dict[str, list[dict]]:
    """RECORD messages of a Singer tap's output, by stream."""
    out: dict[str, list[dict]] = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            message = json.loads(line)
            if message.get("type") == "RECORD":
                out.setdefault(message["stream"], []).append(message["record"])
    return out
