"""Pins make a rollout durable. `canonry promote` and `canonry rollback` put canonical rows live that the
checkout's dbt code may not build (a shadow of another project copy, a canary, the previous version); the
next ordinary build (`canonry sync`, a webhook drain, a Dagster run, a push's gate) would silently rebuild
them with the checkout's code. So each such action pins the connections it touched to the code version it
put live (`ops.rollout_pins`), and an ordinary build whose canonical tables hold rows of a connection pinned
to other code than the checkout's is refused, saying which pin and what to do: put the checkout live through
`canonry shadow` + `canonry promote`, check out that version again, or `canonry rollout unpin`. The raw
layer is untouched by a refusal (a sync still loads), so nothing is lost while a pin holds.

A pin equal to the checkout's code refuses nothing. Kept in the kit's terms (ops, warehouse, the registry)
so that canonry.transform and Dagster can consult it without importing the rest of the rollout package."""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from canonry import ops
from canonry.canonical import TABLES
from canonry.providers import tables_fed_by
from canonry.warehouse import connect, postgres_url, warehouse_path


@dataclass
class Version:
    """The code that built a set of tables: git commit of the project, dirty flag, dbt code hash."""
    git_commit: str | None
    git_dirty: bool | None
    manifest_hash: str | None

    def describe(self) -> str:
        commit = (self.git_commit[:12] if self.git_commit else "commit unknown") + \
            (" + uncommitted dbt/ changes" if self.git_dirty else "")
        return f"dbt code {self.manifest_hash[:12] if self.manifest_hash else 'unknown'} ({commit})"


@dataclass(frozen=True)
class Pin:
    connection_id: str
    version: Version
    action: str            # promote, canary, rollback: what put this code live for the connection
    pinned_at: datetime | None
    pinned_by: str | None

    def describe(self) -> str:
        when = self.pinned_at.isoformat(timespec="seconds") if self.pinned_at else "?"
        return (f"{self.connection_id} pinned to {self.version.describe()} by `canonry {self.action}` "
                f"({self.pinned_by or '?'}, {when})")


def who() -> str:
    """The operator recorded with a pin or a pause (the OS user; no credential)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container user)
        return "unknown"


def code_hash(manifest_path: Path) -> str | None:
    """A hash of the dbt code in a manifest (each node's file checksum, each macro's SQL): equal for two
    builds of the same code, whatever the run's invocation id, time or vars."""
    if not manifest_path.exists():
        return None
    manifest = json.loads(manifest_path.read_text())
    parts = {uid: (node.get("checksum") or {}).get("checksum") for uid, node in manifest.get("nodes", {}).items()}
    parts.update({uid: hashlib.sha256((m.get("macro_sql") or "").encode()).hexdigest()
                  for uid, m in manifest.get("macros", {}).items() if m.get("package_name") == "canonry"})
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def pins(conn=None) -> dict[str, Pin]:
    """connection id -> its pin (none before the warehouse exists)."""
    if conn is None and not postgres_url() and not warehouse_path().exists():
        return {}
    own = conn is None
    conn = conn or connect(purpose="reading rollout pins")
    try:
        ops.ensure_tables(conn)
        rows = conn.execute("select connection_id, manifest_hash, git_commit, git_dirty, action, pinned_at, "
                            "pinned_by from ops.rollout_pins order by connection_id").fetchall()
    finally:
        if own:
            conn.close()
    return {cid: Pin(cid, Version(commit, dirty, manifest_hash), action, at, by)
            for cid, manifest_hash, commit, dirty, action, at, by in rows}


def set_pins(connection_ids: list[str], version: Version, action: str) -> None:
    """Pin these connections to `version` (replacing their pins)."""
    if not connection_ids:
        return
    conn = connect(purpose=f"canonry {action}: pinning connections")
    try:
        ops.ensure_tables(conn)
        now, by = datetime.now(UTC), who()
        for cid in connection_ids:
            ops._replace(conn, "rollout_pins", "connection_id", [
                cid, version.manifest_hash, version.git_commit, version.git_dirty, action, now, by])
    finally:
        conn.close()


def unpin(connection_ids: list[str] | None = None) -> list[Pin]:
    """Lift the pins of these connections (None: all); returns the pins lifted."""
    conn = connect(purpose="canonry rollout unpin")
    try:
        lifted = [p for cid, p in pins(conn).items() if connection_ids is None or cid in connection_ids]
        for pin in lifted:
            conn.execute("delete from ops.rollout_pins where connection_id = ?", [pin.connection_id])
    finally:
        conn.close()
    return lifted


def connections_feeding(tables: list[str] | set[str], conn=None) -> list[str]:
    """The connections the warehouse knows (ops.connections) whose provider feeds one of these tables."""
    own = conn is None
    conn = conn or connect(purpose="reading the connections")
    try:
        ops.ensure_tables(conn)
        rows = conn.execute("select connection_id, provider from ops.connections").fetchall()
    finally:
        if own:
            conn.close()
    return sorted(cid for cid, provider in rows if set(tables_fed_by([provider])) & set(tables))


def conflicts(tables: set[str] | None, checkout_hash: str | None) -> list[Pin]:
    """The pins a build of these canonical tables (None: all) with the checkout's code would undo: pinned
    to other code, on a connection whose provider feeds one of the tables."""
    current = pins()
    if not current:
        return []
    tables = set(TABLES) if tables is None else tables
    if not tables:
        return []
    feeding = set(connections_feeding(tables))
    return [p for cid, p in current.items() if cid in feeding and p.version.manifest_hash != checkout_hash]


def refusal(held: list[Pin], checkout_hash: str | None, what: str) -> str:
    """The message of a build refused because of pins: which, why, what to do."""
    ids = " ".join(f"-c {p.connection_id}" for p in held)
    return (f"{what} refused: it would rebuild canonical rows with the checkout's dbt code "
            f"{(checkout_hash or 'unknown')[:12]}, but " + "; ".join(p.describe() for p in held) +
            ". Nothing was rebuilt (raw data is kept). To put the checkout's code live run `canonry shadow` "
            f"then `canonry promote`; to keep the pinned version check it out again; to let ordinary builds "
            f"rebuild these rows with the checkout's code run `canonry rollout unpin {ids}`")


def selected_tables(manifest_path: Path, args: list[str]) -> set[str] | None:
    """The canonical tables a `dbt build`/`run` with these arguments builds (None: every one), from the
    manifest's lineage. Selectors this does not understand count as every table (a pin is never bypassed
    by a selector it cannot read)."""
    if "--select" not in args and "-s" not in args:
        return None
    at = args.index("--select") if "--select" in args else args.index("-s")
    selectors = []
    for arg in args[at + 1:]:
        if arg.startswith("-"):
            break
        selectors.append(arg)
    manifest = json.loads(manifest_path.read_text())
    nodes = {**manifest.get("nodes", {}), **manifest.get("sources", {})}
    parents, children = manifest.get("parent_map", {}), manifest.get("child_map", {})
    chosen: set[str] = set()
    for selector in selectors:
        found = _resolve(selector, nodes, parents, children)
        if found is None:
            return None
        chosen |= found
    return {nodes[u]["name"] for u in chosen if u.startswith("model.") and nodes[u]["name"] in TABLES}


def _walk(start: set[str], edges: dict[str, list[str]]) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for nxt in edges.get(todo.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _resolve(selector: str, nodes: dict, parents: dict, children: dict) -> set[str] | None:
    """Unique ids one dbt selector picks (an intersection `a,b` as a superset: its first part, or nothing
    when it is limited to a resource type other than models); None: not understood."""
    parts = selector.split(",")
    if any(p.startswith("resource_type:") and p != "resource_type:model" for p in parts):
        return set()
    method = parts[0]
    both = method.startswith("@")
    up = method.startswith("+") or both
    down = method.endswith("+") or both
    base = method.strip("@+")
    if base.startswith("source:"):
        name = base.removeprefix("source:")
        start = {u for u, n in nodes.items() if u.startswith("source.") and
                 (n.get("source_name") == name or f"{n.get('source_name')}.{n.get('name')}" == name)}
    elif ":" not in base:
        start = {u for u, n in nodes.items() if n.get("name") == base and not u.startswith("test.")}
    else:
        return None
    found = set(start)
    if down:
        found |= _walk(start, children)
    if up:
        found |= _walk(found if both else start, parents)
    return found
