"""The demo's connections file, assembled from each provider's own `canonry/sandbox/<slug>/demo-connection.yml`,
so that adding a provider's sandbox adds it to the demo without editing a shared file.

Each provider's file is one connection (a YAML mapping) after a header comment block; the assembled file lists
them in the order of their placeholder ports (`http://127.0.0.1:187xx`), keeps their comments, and is written
into the data dir (`demo-connections.yml`), where `canonry demo` and `make ui` read it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from canonry.warehouse import PROJECT_ROOT

SANDBOX_ROOT = PROJECT_ROOT / "canonry" / "sandbox"
FILE_NAME = "demo-connection.yml"
HEADER = """\
# The demo's connections: one tenant ("acme") at every provider, each pointed at its local sandbox. Assembled by
# canonry/demo_connections.py from canonry/sandbox/<slug>/demo-connection.yml (edit those, not this file).
# The 127.0.0.1:187xx addresses are placeholders: `canonry demo` / `make ui` start each sandbox on a free
# port and write the resolved file to <data dir>/demo-connections.resolved.yml.
# Secrets are references, never values: `canonry demo` stores the sandboxes' credentials in the encrypted
# local secret store (local:demo-…) and authorises oauth2 connections with the real `canonry connect` flow
# against the sandbox (token sets land in the same store, local:…).
version: 1
connections:
"""


def _entry(path: Path) -> tuple[int, str]:
    """(placeholder port, the connection as a list item of `connections:`) of one provider's file."""
    text = path.read_text()
    header, blank, body = text.partition("\n\n")
    if not blank or not all(line.startswith("#") for line in header.splitlines()):
        body = text   # no header block: the whole file is the connection
    connection = yaml.safe_load(body)
    if not isinstance(connection, dict) or "id" not in connection:
        raise ValueError(f"{path}: a demo connection file holds one connection (a mapping with an `id`)")
    port = re.search(r":(\d+)", str(connection.get("base_url", "")).split("//", 1)[-1])
    lines = body.strip("\n").splitlines()
    first = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    item = [f"  {line}" if line else "" for line in lines[:first]]
    item.append(f"  - {lines[first]}")
    item += [f"    {line}" if line else "" for line in lines[first + 1:]]
    return (int(port.group(1)) if port else 0), "\n".join(item)


def demo_connections_text(root: Path = SANDBOX_ROOT) -> str:
    """The assembled demo connections file."""
    entries = sorted(_entry(path) for path in root.glob(f"*/{FILE_NAME}"))
    return HEADER + "\n".join(item for _, item in entries) + "\n"


def write_demo_connections(directory: Path) -> Path:
    """Write the assembled file to `directory/demo-connections.yml` (only when it changed) and return its path."""
    target = directory / "demo-connections.yml"
    text = demo_connections_text()
    if not target.exists() or target.read_text() != text:
        directory.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return target
