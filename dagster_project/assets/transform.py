"""dbt assets: staging and canonical models, linked to the raw assets through dbt sources.

Every model carries an eager automation condition (`WHEN_INPUTS_UPDATE`): when a raw table is materialised on its own (a
partition of one connection, or `raw/hubspot/contacts` alone), the automation sensor builds what is
downstream of it; a connection's scheduled job builds its lineage in the same run."""


from collections.abc import Mapping, Sequence
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AutomationCondition, Failure
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from canonry.transform import capture_changes
from canonry.warehouse import writer_lock
from dagster_project.concurrency import warehouse_op_tags, warehouse_pool
from dagster_project.resources import dbt_project

OWNER = "team:analytics-engineering"
# Dagster's `eager()` without its "no dependency missing" guard (a mart reads every provider's models, and a
# provider with no connection never materialises its own) nor its "newly missing" trigger (no build before
# the first sync): build when a dependency was updated, once nothing upstream is still running.
WHEN_INPUTS_UPDATE = (
    AutomationCondition.any_deps_updated().since_last_handled()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("when inputs update")


class CanonryTranslator(DagsterDbtTranslator):
    """dbt source `<slug>.<table>` -> `raw/<slug>/<table>` (the ingestion asset); models -> `<schema>/<name>`."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            source_name = dbt_resource_props["source_name"]
            if source_name == "canonry_ops":
                return AssetKey(["ops", dbt_resource_props["name"]])
            return AssetKey(["raw", source_name, dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or "staging"
        return AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        path = dbt_resource_props.get("original_file_path", "")
        for layer in ("staging", "intermediate"):
            if f"models/{layer}/" in path:
                return path.split(f"models/{layer}/")[1].split("/")[0]
        if "models/marts/" in path:
            return "canonical"
        if "models/reverse_etl/" in path:
            return "reverse_etl"
        if dbt_resource_props["resource_type"] == "seed":
            return "mappings"
        return None

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        return [OWNER]

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> AutomationCondition | None:
        return WHEN_INPUTS_UPDATE if dbt_resource_props["resource_type"] == "model" else None


PROJECT = dbt_project()


def refuse_pinned(context: AssetExecutionContext) -> None:
    """A run that would rebuild canonical rows a rollout pinned to other code than this code location's
    (canonry/rollout/pins.py) fails before dbt starts, saying which pin and what to do."""
    from canonry.canonical import TABLES
    from canonry.rollout.pins import code_hash, conflicts, pins, refusal

    if not pins():
        return
    tables = {key.path[-1] for key in context.selected_asset_keys} & set(TABLES)
    checkout = code_hash(PROJECT.manifest_path)
    held = conflicts(tables, checkout)
    if held:
        raise Failure(description=refusal(held, checkout, f"dagster run {context.run.run_id}"))


@dbt_assets(manifest=PROJECT.manifest_path, dagster_dbt_translator=CanonryTranslator(), name="canonry_dbt",
            pool=warehouse_pool(), op_tags=warehouse_op_tags())
def canonry_dbt_assets(context: AssetExecutionContext, dbt: DbtCliResource):
    # The Dagster pool serialises Dagster's own steps; the writer lock also keeps out a `canonry sync` or
    # another run started outside this instance (dbt writes the DuckDB file from a subprocess).
    with writer_lock("dagster dbt build"):
        refuse_pinned(context)
        yield from dbt.cli(["build"], context=context).stream()
        capture_changes()  # outbound change events of what this build changed (canonry/events)
    # The masked views analysts read (a PostgreSQL table rebuild drops its dependent views: recreate them).
    from canonry.governance import masking

    masking.refresh()
