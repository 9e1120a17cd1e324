# Note: no `from __future__ import annotations` here: Dagster inspects the context annotation at runtime.
"""Reverse-ETL push assets: one per declarative sync (`reverse_etl/<name>.yml`, asset `push/<sync>`) and one
per `rev_<provider>__<object>` dbt model some connection may write that no sync pushes (`push/<model>`, its
implied sync), group `reverse_etl`, partitioned like the provider's raw assets (one partition per
connection): a run of partition `hubspot-acme` pushes to that connection only. Each depends on its dbt model
and directly on the canonical tables the model reads, whose GE checks are blocking
(dagster_project/checks.py): when one fails, Dagster does not run the push. The asset also re-reads the
verdict of those checks in this run (ops.validation_results, by Dagster run id) before writing."""


import json
from dataclasses import dataclass
from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, Failure, MaterializeResult, asset

from canonry.config import Connection
from dagster_project.assets.ingestion import connection_partitions
from dagster_project.concurrency import warehouse_op_tags, warehouse_pool

PUSH_PREFIX = "push"  # asset keys push/<sync>: a connection job selects its pushes by this prefix

OWNER = "team:revops"


def _gate_from_checks(model: str, tables: list[str], run_id: str):
    """The verdict of this run's GE evaluation of each canonical table the model reads."""
    from canonry import ops
    from canonry.reverse_etl import GateVerdict
    from canonry.warehouse import connect

    conn = connect()
    try:
        ops.ensure_tables(conn)
        failed = []
        for table in tables:
            rows = conn.execute(
                "select expectation, column_name, success from ops.validation_results where run_id = ? "
                "and table_name = ?", [run_id, table]).fetchall()
            if not rows:
                failed.append(f"GE canonical.{table}: not evaluated in this run")
            failed += [f"GE canonical.{table}: {e}({c or ''}) failed" for e, c, ok in rows if not ok]
    finally:
        conn.close()
    return GateVerdict(model, not failed, failed, tables, source="dagster")


def writers(connections: list[Connection], provider: str, obj: str) -> list[Connection]:
    return [c for c in connections if c.provider == provider and c.write_back.enabled and obj in c.write_back.objects]


@dataclass
class Push:
    """One push asset `push/<name>`: a declarative sync (name = the sync's), or a model no sync pushes
    (name = the model's, pushed by its implied sync). `writers` are the connections it may write (its
    partitions that push); `schedule` is the sync's own cron (None: it runs in its connections' jobs)."""

    name: str
    info: object   # canonry.reverse_etl.engine.ModelInfo
    provider: str
    writers: list[str]
    schedule: str | None = None

    @property
    def key(self) -> AssetKey:
        return AssetKey([PUSH_PREFIX, self.name])

    @property
    def model(self) -> str:
        return self.info.name


class SyncFilesInvalid(Exception):
    """A sync file under reverse_etl/ does not parse: the code location does not load (its push and schedule
    cannot take effect). The message is `canonry validate`'s (file:line, code, hint)."""


def load_sync_files(directory: Path | None = None) -> dict:
    from canonry.reverse_etl.syncs import load_syncs, syncs_dir

    syncs, problems = load_syncs(directory)
    if problems:
        listing = "\n  ".join(p.render() for p in problems)
        raise SyncFilesInvalid(f"the sync files in {directory or syncs_dir()} are invalid:\n  {listing}\n"
                               f"Fix the problems listed (`canonry validate`), then reload the code location.")
    return syncs


def push_models(connections: list[Connection], manifest_path) -> dict[str, tuple]:
    """model -> (ModelInfo, connections writing it), for every reverse-ETL model some connection writes."""
    from canonry.reverse_etl.engine import MODEL_NAME, model_info

    manifest = json.loads(manifest_path.read_text())
    out = {}
    for node in manifest.get("nodes", {}).values():
        name = node.get("name", "")
        if node.get("resource_type") != "model" or not MODEL_NAME.match(name):
            continue
        info = model_info(name, manifest)
        found = writers(connections, info.provider, info.object)
        if found:
            out[info.name] = (info, found)
    return out


def pushes(connections: list[Connection], manifest_path, syncs: dict, gated: list[str]) -> list[Push]:
    """One Push per sync some connection may write, then one per written model that no sync pushes; only
    those whose canonical tables are all `gated` (fed by a configured provider, so their GE checks exist):
    the gate of any other could never pass (e.g. ATS hires → HubSpot contacts with no ATS connection)."""
    from canonry.reverse_etl.engine import model_info

    manifest = json.loads(manifest_path.read_text())
    out = []
    for sync in sorted(syncs.values(), key=lambda s: s.name):
        if f"model.canonry.{sync.model}" not in manifest.get("nodes", {}):
            continue   # `canonry validate` reports the unknown model; nothing to push
        named = sync.spec.destination.connection
        found = [c.id for c in writers(connections, sync.provider, sync.object) if named in (None, c.id)]
        if found:
            out.append(Push(sync.name, model_info(sync.model, manifest), sync.provider, found, sync.spec.schedule))
    synced = {s.model for s in syncs.values()}
    out += [Push(model, info, info.provider, [c.id for c in found])
            for model, (info, found) in push_models(connections, manifest_path).items() if model not in synced]
    return [p for p in out if set(p.info.canonical_parents) <= set(gated)]


def push_assets(connections: list[Connection], found: list[Push]) -> list:
    return [_push_asset(p, connections) for p in found]


def _push_asset(target: Push, connections: list[Connection]):
    model, parents = target.model, target.info.canonical_parents
    what = f"sync {target.name} ({model})" if target.name != model else model

    @asset(key=target.key, group_name="reverse_etl", kinds={"python"}, owners=[OWNER],
           deps=[AssetKey(["reverse_etl", model]), *(AssetKey(["canonical", t]) for t in parents)],
           partitions_def=connection_partitions(target.provider, connections), pool=warehouse_pool(),
           op_tags=warehouse_op_tags(),
           description=f"Push {what}'s changes into the CRM connection of the partition (gated by the GE "
                       f"checks of {', '.join(parents)})")
    def push_model(context: AssetExecutionContext):
        from canonry.config import ConnectionsFile
        from canonry.reverse_etl import push

        if context.partition_key not in target.writers:
            raise Failure(description=f"{what} does not write to {context.partition_key} (it writes "
                                      f"{', '.join(target.writers)}): pick one of those partitions",
                          allow_retries=False)
        verdict = _gate_from_checks(model, parents, context.run.run_id)
        if not verdict.passed:
            raise Failure(description=f"{model} not pushed: {verdict.describe()}", allow_retries=False)
        result = push(target.name, verdict,
                      connections=ConnectionsFile.model_construct(version=1, connections=connections),
                      progress=context.log.info, connection=context.partition_key)
        metadata = {c.connection_id: {k: getattr(c, k) for k in ("status", "inserts", "updates", "deletes",
                                                                  "written", "rejected", "verified")}
                    for c in result.connections}
        failed = [c for c in result.connections if c.status == "failed"]
        if failed:
            raise Failure(description=str(failed[0].error), metadata={"connections": metadata})
        return MaterializeResult(metadata={"connections": metadata})

    return push_model
