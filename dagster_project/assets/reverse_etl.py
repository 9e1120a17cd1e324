# Note: no `from __future__ import annotations` here: Dagster inspects the context annotation at runtime.
"""Reverse-ETL push assets: one per `rev_<provider>__<object>` dbt model some connection may write
(`push/<model>`, group `reverse_etl`), partitioned like the provider's raw assets (one partition per
connection): a run of partition `hubspot-acme` pushes to that connection only. Each depends on its dbt model
and directly on the canonical tables the model reads, whose GE checks are blocking
(dagster_project/checks.py): when one fails, Dagster does not run the push. The asset also re-reads the
verdict of those checks in this run (ops.validation_results, by Dagster run id) before writing."""


import json

from dagster import AssetExecutionContext, AssetKey, Failure, MaterializeResult, asset

from canonry.config import Connection
from dagster_project.assets.ingestion import connection_partitions
from dagster_project.concurrency import warehouse_op_tags, warehouse_pool

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


def push_assets(connections: list[Connection], manifest_path) -> list:
    return [_push_asset(info.name, info.canonical_parents, info.provider, connections)
            for info, _ in push_models(connections, manifest_path).values()]


def _push_asset(model: str, parents: list[str], provider: str, connections: list[Connection]):
    @asset(key=AssetKey(["push", model]), group_name="reverse_etl", kinds={"python"}, owners=[OWNER],
           deps=[AssetKey(["reverse_etl", model]), *(AssetKey(["canonical", t]) for t in parents)],
           partitions_def=connection_partitions(provider, connections), pool=warehouse_pool(),
           op_tags=warehouse_op_tags(),
           description=f"Push {model}'s changes into the CRM connection of the partition (gated by the GE "
                       f"checks of {', '.join(parents)})")
    def push_model(context: AssetExecutionContext):
        from canonry.config import ConnectionsFile
        from canonry.reverse_etl import push

        verdict = _gate_from_checks(model, parents, context.run_id)
        if not verdict.passed:
            raise Failure(description=f"{model} not pushed: {verdict.describe()}", allow_retries=False)
        result = push(model, verdict, connections=ConnectionsFile.model_construct(version=1, connections=connections),
                      progress=context.log.info,
                      connection=context.partition_key)
        metadata = {c.connection_id: {k: getattr(c, k) for k in ("status", "inserts", "updates", "deletes",
                                                                  "written", "rejected", "verified")}
                    for c in result.connections}
        failed = [c for c in result.connections if c.status == "failed"]
        if failed:
            raise Failure(description=str(failed[0].error), metadata={"connections": metadata})
        return MaterializeResult(metadata={"connections": metadata})

    return push_model
