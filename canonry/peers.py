"""Virtualenvs for clients we did not write: the benchmark's peer (tap-hubspot) and the contract tests'
independent clients (Pipedrive, Ashby and Lever SDKs or taps).

Each client gets its own venv, never Canonry's (their pins would fight ours), created from PyPI on first
use and reused afterwards: a marker file holds the exact requirement list, so changing a pin rebuilds it.
Venvs live under `~/.cache/canonry/peers/<name>` (override with CANONRY_PEER_CACHE), outside the work
tree, so they survive between runs and fresh clones on one machine. Creation takes a file lock: two test
workers asking for the same venv build it once.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

INSTALL_TIMEOUT_SECONDS = 900


class PeerInstallError(RuntimeError):
    """A peer venv could not be created or its packages not installed."""


def peer_cache_root() -> Path:
    return Path(os.environ.get("CANONRY_PEER_CACHE") or Path.home() / ".cache" / "canonry" / "peers")


def ensure_peer_venv(name: str, requirements: Sequence[str], directory: Path | None = None) -> Path:
    """The python of venv `name` with exactly `requirements` (pinned `pkg==x.y`) installed; built if
    missing or if its requirements changed. `directory` overrides where the venv lives."""
    venv = directory or peer_cache_root() / name
    python = venv / "bin" / "python"
    marker = venv / ".canonry-requirements"
    wanted = "\n".join(requirements)
    if marker.exists() and marker.read_text() == wanted and python.exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == wanted and python.exists():
            return python
        try:
            if not python.exists():
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True,
                               text=True, timeout=120)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            *requirements], check=True, capture_output=True, text=True,
                           timeout=INSTALL_TIMEOUT_SECONDS)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            detail = getattr(exc, "stderr", None) or str(exc)
            raise PeerInstallError(
                f"could not build the peer venv {venv} with {', '.join(requirements)}: {str(detail)[-800:]}\n"
                "It needs PyPI once (then it is cached); delete that directory to rebuild it.") from exc
        marker.write_text(wanted)
    return python
