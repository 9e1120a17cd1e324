"""`canonry shadow`: the current checkout's dbt project built from the raw layer into side schemas
(`staging__shadow`, `canonical__shadow`, `reverse_etl__shadow`), beside the live ones, with no API call:
dbt reads only the warehouse. The dbt var `canonry_schema_suffix` (dbt/macros/generate_schema_name.sql) moves
every model and seed; sources (raw, ops) stay where they are. Its own target directory keeps the live
project's partial parse intact.

Each build records the code version that made it (git commit, whether dbt/ had uncommitted changes, the
manifest's code hash) in `ops.rollout_versions` and keeps a copy of the dbt project it built under
`<data dir>/rollouts/versions/<hash>/`, which `canonry rollback` can rebuild from later."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from canonry import ops
from canonry.canonical import TABLES
from canonry.rollout.pins import Version, code_hash, who
from canonry.transform import DBT_DIR, DbtResult, run_dbt
from canonry.warehouse import PROJECT_ROOT, connect, data_dir

SUFFIX = "__shadow"
LIVE_SCHEMAS = ("staging", "canonical", "reverse_etl")
PROJECT_FILES = ("dbt_project.yml", "macros", "models", "seeds", "tests")


@dataclass
class ShadowBuild:
    result: DbtResult
    version: Version
    tables: list[str] = field(default_factory=list)
    version_id: str = ""


def shadow_schema(schema: str, suffix: str = SUFFIX) -> str:
    return f"{schema}{suffix}"


def target_path(kind: str = "shadow") -> Path:
    path = data_dir() / f"dbt_target_{kind}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def versions_dir() -> Path:
    return data_dir() / "rollouts" / "versions"


def _git(*args: str, cwd: Path = PROJECT_ROOT) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):  # no git, not a checkout (an installed copy)
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def current_version(manifest_path: Path, project_dir: Path = DBT_DIR) -> Version:
    dirty = _git("status", "--porcelain", "--", ".", cwd=project_dir)
    return Version(_git("rev-parse", "HEAD", cwd=project_dir), None if dirty is None else bool(dirty),
                   code_hash(manifest_path))


def snapshot_project(version: Version, project_dir: Path = DBT_DIR) -> Path | None:
    """Keep a copy of the dbt project that built `version` (rollback rebuilds from it)."""
    if not version.manifest_hash:
        return None
    target = versions_dir() / version.manifest_hash[:16] / "dbt"
    if not target.exists():
        for name in PROJECT_FILES:
            source = project_dir / name
            if source.is_dir():
                shutil.copytree(source, target / name)
            elif source.exists():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target / name)
    return target


def project_snapshot(manifest_hash: str | None) -> Path | None:
    path = versions_dir() / (manifest_hash or "")[:16] / "dbt"
    return path if manifest_hash and (path / "dbt_project.yml").exists() else None


def drop_shadow(suffix: str = SUFFIX) -> None:
    conn = connect(purpose="dropping the shadow schemas")
    try:
        for schema in LIVE_SCHEMAS:
            conn.execute(f'drop schema if exists "{shadow_schema(schema, suffix)}" cascade')
    finally:
        conn.close()


def synced_providers() -> list[str]:
    """The providers of every connection the warehouse knows (ops.connections)."""
    conn = connect(purpose="reading the connections")
    try:
        ops.ensure_tables(conn)
        return sorted({r[0] for r in conn.execute("select distinct provider from ops.connections").fetchall()})
    finally:
        conn.close()


def selection(select: list[str] | None, providers: list[str]) -> list[str] | None:
    """What to build: the lineage of these providers (what their syncs build: canonry.transform), and each
    `--select` selector with its parents (`+`: a shadow schema starts empty, so what a model reads must be
    built there too). None: the whole project."""
    from canonry.transform import lineage_selection

    chosen = [s if s[:1] in "+@" else f"+{s}" for s in select or []]
    if chosen:
        return chosen
    return lineage_selection(providers) if providers else None


def build_shadow(select: list[str] | None = None, providers: list[str] | None = None, *,
                 project_dir: Path | None = None, kind: str = "shadow", connections: list[str] | None = None,
                 record: bool = True) -> ShadowBuild:
    """`dbt build --full-refresh` of the selection into the shadow schemas (dropped first), from raw."""
    drop_shadow()
    args = ["build", "--full-refresh", "--vars", json.dumps({"canonry_schema_suffix": SUFFIX})]
    chosen = selection(select, providers or synced_providers())
    if chosen:  # only the tests whose every parent is built here
        args += ["--select", *chosen, "--indirect-selection", "cautious"]
    target = target_path(kind)
    result = run_dbt(args, project_dir=project_dir, target_path=target, honour_pins=False)
    version = current_version(target / "manifest.json", project_dir or DBT_DIR)
    built = sorted({n.name for n in result.nodes if n.resource_type == "model" and n.name in TABLES
                    and n.status == "success"})
    build = ShadowBuild(result, version, built)
    if record:
        snapshot_project(version, project_dir or DBT_DIR)
        build.version_id = record_version("shadow", built, version, connections)
    return build


def record_version(action: str, tables: list[str], version: Version, connections: list[str] | None = None,
                   conn=None) -> str:
    """One ops.rollout_versions row per table: which code `action` put there (or, for `shadow`, built)."""
    version_id = uuid.uuid4().hex[:12]
    now = datetime.now(UTC)
    ops.append("rollout_versions", [{
        "version_id": version_id, "table_name": table, "action": action, "git_commit": version.git_commit,
        "git_dirty": version.git_dirty, "manifest_hash": version.manifest_hash, "connections": connections,
        "recorded_at": now, "recorded_by": who()} for table in tables], conn)
    return version_id


def versions(conn=None) -> list[dict]:
    """Every ops.rollout_versions row, oldest first."""
    own = conn is None
    conn = conn or connect(purpose="reading rollout versions")
    try:
        ops.ensure_tables(conn)
        cursor = conn.execute("select * from ops.rollout_versions order by recorded_at, version_id, table_name")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        if own:
            conn.close()
    for row in rows:
        if isinstance(row["connections"], str):
            row["connections"] = json.loads(row["connections"])
    return rows
