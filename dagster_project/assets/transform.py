"""dbt assets: staging and canonical models, linked to the raw assets through dbt sources."""


from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from dagster_project.resources import dbt_project


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
        return None


PROJECT = dbt_project()


@dbt_assets(manifest=PROJECT.manifest_path, dagster_dbt_translator=CanonryTranslator(), name="canonry_dbt")
def canonry_dbt_assets(context: AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()
