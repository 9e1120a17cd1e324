"""Runs dbt (in-process, through dbtRunner) against the warehouse: staging -> canonical."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from canonry import ops, tracing
from canonry.warehouse import (
    PROJECT_ROOT,
    connect,
    data_dir,
    dialect,
    postgres_target,
    postgres_url,
    warehouse_path,
    writer_lock,
)
from canonry.warehouse import dbt_target_dir as target_dir

log = logging.getLogger("canonry.transform")
DBT_DIR = PROJECT_ROOT / "dbt"


@dataclass
class NodeResult:
    name: str
    resource_type: str
    status: str
    message: str | None = None


@dataclass
class DbtResult:
    success: bool
    nodes: list[NodeResult] = field(default_factory=list)
    error: str | None = None

    def failures(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.status in ("error", "fail", "runtime error")]

    def warnings(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.status == "warn"]


def dbt_env() -> dict[str, str]:
    """The environment dbt's profile reads (dbt/profiles.yml): the duckdb target and the file, or the
    postgres target and its settings. The password goes in a `DBT_ENV_SECRET_` variable, which dbt
    scrubs from its logs and never writes into target artifacts."""
    env = {
        "CANONRY_DBT_TARGET": dialect(),
        "CANONRY_WAREHOUSE_PATH": str(warehouse_path()),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PROFILES_DIR": str(DBT_DIR),
    }
    target = postgres_target()
    if target is not None:
        env.update({"CANONRY_PG_HOST": target.host, "CANONRY_PG_PORT": str(target.port),
                    "CANONRY_PG_USER": target.user, "CANONRY_PG_DATABASE": target.database,
                    "DBT_ENV_SECRET_CANONRY_PG_PASSWORD": target.password})
    return env


def run_dbt(args: list[str], *, project_dir: Path | None = None, target_path: Path | None = None,
            honour_pins: bool = True) -> DbtResult:
    """Invoke dbt with our project, profile and a target directory under the data dir, holding the
    warehouse writer lock (dbt-duckdb opens the file for writing; `parse` does not touch it).
    `project_dir` / `target_path`: another copy of the project (a rollout's recorded version) and its own
    target directory (a shadow build's vars would otherwise invalidate the main one's partial parse).
    A build of the checkout's project is refused (not run) while it would undo a rollout's pin
    (canonry/rollout/pins.py); `honour_pins=False` is for the rollout commands themselves."""
    if args[0] == "parse":
        return _invoke_dbt(args, project_dir, target_path)
    with writer_lock(f"dbt {args[0]}"):
        if honour_pins and project_dir is None and target_path is None and args[0] in ("build", "run", "seed", "snapshot"):
            refused = pin_refusal(args, f"dbt {args[0]}")
            if refused:
                log.warning(refused)
                return DbtResult(False, [], refused)
        return _invoke_dbt(args, project_dir, target_path)


def pin_refusal(args: list[str], what: str) -> str | None:
    """Why this build of the checkout may not run (it would rebuild rows a rollout pinned to other code),
    or None. Costs nothing without pins; with pins, a `dbt parse` gives the checkout's code as it is now."""
    from canonry.rollout.pins import code_hash, conflicts, pins, refusal, selected_tables

    if not pins():
        return None
    parsed = _invoke_dbt(["parse"])
    manifest = target_dir() / "manifest.json"
    if not parsed.success or not manifest.exists():
        return (f"{what} refused: connections are pinned by a rollout (canonry status) and the checkout's dbt "
                f"project could not be parsed to compare its code with theirs ({parsed.error or 'dbt parse failed'})")
    checkout = code_hash(manifest)
    held = conflicts(selected_tables(manifest, args), checkout)
    return refusal(held, checkout, what) if held else None


def _invoke_dbt(args: list[str], project_dir: Path | None = None, target_path: Path | None = None) -> DbtResult:
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_env())
    # ops.connections is a dbt source: make sure it exists even before the first sync.
    conn = connect()
    try:
        ops.ensure_tables(conn)
    finally:
        conn.close()
    base = ["--project-dir", str(project_dir or DBT_DIR), "--profiles-dir", str(DBT_DIR),
            "--target-path", str(target_path or target_dir()),
            "--log-path", str(data_dir() / "dbt_logs")]
    command, rest = args[0], args[1:]
    if command in ("build", "run", "test") and postgres_url() and _unported():
        # Models of providers that do not run on PostgreSQL yet stay out (their syncs are refused too).
        excluded = [f"path:models/{layer}/{p}" for p in _unported() for layer in ("staging", "intermediate")]
        if "--exclude" in rest:  # one --exclude with every selector (a second one would replace the first)
            at = rest.index("--exclude") + 1
            rest = [*rest[:at], *excluded, *rest[at:]]
        else:
            rest = [*rest, "--exclude", *excluded]
    with tracing.span(f"dbt {command}", **{"canonry.dbt.command": command}) as current:
        try:
            result = dbtRunner().invoke([command, *base, "--quiet", *rest])
        finally:
            release_dbt_warehouse()  # before the writer lock is released
        nodes = []
        for item in getattr(result.result, "results", None) or []:
            node = item.node
            nodes.append(NodeResult(node.name, node.resource_type, str(item.status), item.message))
            _node_span(item)
        current.set_attribute("canonry.dbt.success", bool(result.success))
        current.set_attribute("canonry.dbt.nodes", len(nodes))
    error = str(result.exception) if result.exception else None
    return DbtResult(bool(result.success), nodes, error)


def release_dbt_warehouse() -> None:
    """dbt-duckdb keeps its DuckDB handle open after an in-process run; DuckDB allows one writing process
    per file, so let go of it (a `canonry push` or sync in another process must be able to open the file)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter (PostgreSQL): nothing held
        return
    environment = getattr(DuckDBConnectionManager, "_ENV", None)
    if environment is not None:
        environment.close()
        DuckDBConnectionManager._ENV = None


def _unported() -> list[str]:
    from canonry.postgres import unported_providers

    return unported_providers()


def _node_span(item) -> None:
    """A dbt node as a span, timed by dbt's own timing (compile start to execute end)."""
    timing = [t for t in getattr(item, "timing", None) or [] if t.started_at and t.completed_at]
    if timing:
        tracing.completed_span(f"dbt {item.node.resource_type} {item.node.name}", timing[0].started_at,
                               timing[-1].completed_at, **{"canonry.dbt.status": str(item.status),
                                                           "canonry.dbt.resource_type": item.node.resource_type})


# dbt's message when an incremental model's new rows and its table disagree on columns or types.
SCHEMA_DRIFT = "schemas on this incremental model are out of sync"


def build(select: list[str] | None = None, full_refresh: bool = False, cautious: bool = False,
          honour_pins: bool = True) -> DbtResult:
    """`dbt build` (see `_build`), then the masked views of the canonical tables (canonry/governance/masking.py)."""
    result = _build(select, full_refresh, cautious, honour_pins)
    if result.success:
        from canonry.governance import masking

        masking.refresh()
    return result


def _build(select: list[str] | None = None, full_refresh: bool = False, cautious: bool = False,
           honour_pins: bool = True) -> DbtResult:
    """`dbt build` (seeds, models, tests) of the whole project or a selection. `full_refresh` rebuilds the
    incremental models (HubSpot's big staging models, the big CRM marts) whole instead of recomputing the
    records that new raw rows touch: what a changed model or mapping seed needs (benchmarks/README.md, 14)."""
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", *select]
    if cautious:  # only the tests whose every parent is built (a seed's test may read another provider's model)
        args += ["--indirect-selection", "cautious"]
    result = run_dbt(args, honour_pins=honour_pins)
    drifted = [n.name for n in result.failures() if n.resource_type == "model" and SCHEMA_DRIFT in (n.message or "")]
    if drifted and not full_refresh:
        # An incremental model whose rows now come out with other column types than its table holds (an
        # incremental mart once built from fewer providers, or a model whose types were changed): dbt
        # refuses (on_schema_change='fail'). What a full build would give is the model rebuilt whole: do
        # that for these models and what is downstream of them (skipped in the first pass), once.
        retried = run_dbt(["build", "--full-refresh", "--select", *[f"{name}+" for name in drifted]],
                          honour_pins=honour_pins)
        done = {n.name for n in retried.nodes}
        nodes = [n for n in result.nodes if n.name not in done] + retried.nodes
        success = retried.success and not [n for n in result.failures() if n.name not in done]
        result = DbtResult(success, nodes, retried.error or (None if success else result.error))
    capture_changes()
    return result


def capture_changes() -> None:
    """Outbound change events of what the build changed (canonry/events; nothing without subscribers).
    A failure here is logged, never a failed build: the next capture finds the same changes."""
    from canonry.events.capture import capture

    try:
        capture()
    except Exception:  # noqa: BLE001 - the build succeeded; the change log catches up at the next capture
        log.exception("change capture failed (the next build captures these changes)")



def lineage_selection(providers: list[str]) -> list[str] | None:
    """dbt selectors for what syncing these providers can change: their staging and intermediate models,
    the canonical marts and reverse-ETL models downstream (with their tests), and the seeds those read.
    None (the whole project) when every provider is named."""
    from canonry.providers import slugs

    wanted = sorted(set(providers))
    if set(wanted) >= set(slugs()):
        return None
    return [s for p in wanted for s in (f"source:{p}+", f"@source:{p},resource_type:seed")]


def build_for(providers: list[str]) -> DbtResult:
    """`dbt build` of the lineage of these providers only (a sync of one connection rebuilds ~a quarter
    of the project instead of every provider's models). Tests are selected `cautious`ly (only those whose
    parents are all in the lineage): eagerly, a mapping seed in the lineage pulls in another provider's
    singular tests (`ashby_unmapped_enum_values` reads stg_ashby__*), which fail where that provider never
    synced."""
    return build(lineage_selection(providers), cautious=True)


def parse() -> DbtResult:
    return run_dbt(["parse"])


