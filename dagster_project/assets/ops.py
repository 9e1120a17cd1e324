# Note: no `from __future__ import annotations` here: Dagster inspects the context annotation at runtime.
"""`ops/connections`: the connections of the connections file in the warehouse (`ops.connections`, which
the dbt models join for tenant ids), and a check that every connection of the file passed validation."""


from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from dagster_project.concurrency import warehouse_op_tags, warehouse_pool
from dagster_project.resources import ConnectionsInLocation

CONNECTIONS_KEY = AssetKey(["ops", "connections"])
OWNER = "team:data-platform"


def connections_asset(location: ConnectionsInLocation):
    spec = AssetSpec(CONNECTIONS_KEY, group_name="ops", kinds={"duckdb"}, owners=[OWNER],
                     description=f"ops.connections: one row per connection of {location.path} (also written by "
                                 "every sync)")
    check = AssetCheckSpec("connections_file_valid", asset=CONNECTIONS_KEY,
                           description="every connection of the connections file passed `canonry validate`")

    @multi_asset(name="ops_connections", specs=[spec], check_specs=[check], pool=warehouse_pool(),
                 op_tags=warehouse_op_tags())
    def ops_connections(context: AssetExecutionContext):
        from canonry import ops
        from canonry.warehouse import connect

        conn = connect()
        try:
            for c in location.connections:
                ops.upsert_connection(c.id, c.tenant, c.provider, conn)
        finally:
            conn.close()
        yield MaterializeResult(asset_key=CONNECTIONS_KEY, metadata={
            "connections": MetadataValue.json(sorted(c.id for c in location.connections))})
        yield AssetCheckResult(
            check_name="connections_file_valid", passed=not location.problems,
            severity=AssetCheckSeverity.WARN,
            description="; ".join(location.describe_problems(cid) for cid in location.problems) or None,
            metadata={"broken": sorted(location.problems)})

    return ops_connections
