# Note: no `from __future__ import annotations` here: Dagster inspects the context annotation at runtime.
"""Reverse-ETL push assets: one per `rev_<provider>__<object>` dbt model some connection may write
(`push/<model>`, group `reverse_etl`). Each depends on its dbt model and directly on the canonical tables the
model reads, whose GE checks are blocking (dagster_project/checks.py): when one fails, Dagster does not run
the push. The asset also re-reads the verdict of those checks (ops.validation_results) before writing."""


import json

from dagster import AssetExecutionContext, AssetKey, Failure, MaterializeResult, asset

from canonry.config import Connection


def _gate_from_checks(model: str, tables: list[str]):
    """The verdict of the latest Dagster GE evaluation of each canonical table the model reads."""
    from canonry import ops
    from canonry.reverse_etl import GateVerdict
    from canonry.warehouse import connect

    conn = connect()
    try:
        ops.ensure_tables(conn)
        failed = []
        for table in tables:
            rows = conn.execute(
                "select expectation, column_name, success from ops.validation_results where run_id = 'dagster' "
                "and table_name = ? and evaluated_at = (select max(evaluated_at) from ops.validation_results "
                "where run_id = 'dagster' and table_name = ?)", [table, table]).fetchall()
            if not rows:
                failed.append(f"GE canonical.{table}: not evaluated in this build")
            failed += [f"GE canonical.{table}: {e}({c or ''}) failed" for e, c, ok in rows if not ok]
    finally:
        conn.close()
    return GateVerdict(model, not failed, failed, tables, source="dagster")


def push_assets(connections: list[Connection], manifest_path) -> list:
    from canonry.reverse_etl.engine import MODEL_NAME, model_info

    manifest = json.loads(manifest_path.read_text())
    out = []
    for node in manifest.get("nodes", {}).values():
        name = node.get("name", "")
        if node.get("resource_type") != "model" or not MODEL_NAME.match(name):
            continue
        info = model_info(name, manifest)
        writers = [c for c in connections if c.provider == info.provider and c.write_back.enabled
                   and info.object in c.write_back.objects]
        if writers:
            out.append(_push_asset(info.name, info.canonical_parents))
    return out


def _push_asset(model: str, parents: list[str]):
    @asset(key=AssetKey(["push", model]), group_name="reverse_etl", kinds={"python"},
           deps=[AssetKey(["reverse_etl", model]), *(AssetKey(["canonical", t]) for t in parents)],
           description=f"Push {model}'s changes into the CRM (gated by the GE checks of {', '.join(parents)})")
    def push_model(context: AssetExecutionContext):
        from canonry.config import config_path, load_connections
        from canonry.reverse_etl import push

        verdict = _gate_from_checks(model, parents)
        if not verdict.passed:
            raise Failure(description=f"{model} not pushed: {verdict.describe()}", allow_retries=False)
        result = push(model, verdict, connections=load_connections(config_path()), progress=context.log.info)
        metadata = {c.connection_id: {k: getattr(c, k) for k in ("status", "inserts", "updates", "deletes",
                                                                  "written", "rejected", "verified")}
                    for c in result.connections}
        failed = [c for c in result.connections if c.status == "failed"]
        if failed:
            raise Failure(description=str(failed[0].error), metadata={"connections": metadata})
        return MaterializeResult(metadata={"connections": metadata})

    return push_model
