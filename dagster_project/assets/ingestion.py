# Note: no `from __future__ import annotations` here: Dagster inspects the context annotation at runtime.
"""Raw ingestion assets: one multi-asset per provider (keys `raw/<slug>/<table>`, group `<slug>`), which
syncs every configured connection of that provider through canonry.pipeline."""


import importlib

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Failure,
    MaterializeResult,
    RetryPolicy,
    multi_asset,
)

from canonry.config import Connection
from canonry.errors import ErrorClass

# Retried only for classes where a retry can help (the taxonomy's `retried` column); auth and config
# failures surface at once, so the run does not hammer a provider with a dead credential.
INGESTION_RETRY = RetryPolicy(max_retries=2, delay=5)
NOT_RETRIED = {ErrorClass.AUTH_EXPIRED, ErrorClass.PERMISSION_DENIED, ErrorClass.CONFIG_ERROR,
               ErrorClass.PROVIDER_CONTRACT, ErrorClass.QUOTA_EXHAUSTED}


def raw_key(provider: str, table: str) -> AssetKey:
    return AssetKey(["raw", provider, table])


def provider_assets(provider: str, connections: list[Connection]):
    settings = importlib.import_module(f"sources.{provider}.settings")
    tables = list(settings.OBJECTS)
    specs = [AssetSpec(raw_key(provider, t), group_name=provider, kinds={"dlt", "duckdb"},
                       description=f"raw_{provider}.{t}: append-only pages (payload kept whole)")
             for t in tables]

    @multi_asset(name=f"raw_{provider}", specs=specs, can_subset=False, retry_policy=INGESTION_RETRY)
    def ingest(context: AssetExecutionContext):
        from canonry.pipeline import sync

        failures = []
        totals: dict[str, int] = {}
        for connection in connections:
            result = sync(connection)
            context.log.info(f"{connection.id}: {result.status}, {result.calls} API calls, records {result.records}")
            if result.error:
                failures.append(result.error)
            for table, count in result.records.items():
                totals[table] = totals.get(table, 0) + count
        if failures:
            error = failures[0]
            # Failure (not an exception) stops Dagster's retry policy for classes a retry cannot fix.
            if error.error_class in NOT_RETRIED:
                raise Failure(description=str(error), allow_retries=False,
                              metadata={"error_class": error.error_class.value})
            raise RuntimeError(str(error))
        for table in tables:
            yield MaterializeResult(asset_key=raw_key(provider, table),
                                    metadata={"rows_loaded": totals.get(table, 0)})

    return ingest
