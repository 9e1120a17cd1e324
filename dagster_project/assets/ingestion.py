# Note: no `from __future__ import annotations` here: Dagster inspects the context annotation at runtime.
"""Raw ingestion assets: one multi-asset per provider (keys `raw/<slug>/<table>`, group `<slug>`), which
syncs every configured connection of that provider through canonry.pipeline.

Retries follow the error taxonomy (DESIGN.md): a run whose failures are all retryable classes
(`transient`, `rate_limited`) is retried with exponential back-off and jitter — each retry resumes from
the last checkpoint; `auth_expired`, `permission_denied`, `config_error` (and `provider_contract`,
`quota_exhausted`, and any stalled connection) fail at once, without retry. One connection's failure
never stops the provider's other connections: they all sync first, then the step fails."""


import importlib

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Backoff,
    Failure,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    multi_asset,
)

from canonry.config import Connection
from canonry.errors import ErrorClass

INGESTION_RETRY = RetryPolicy(max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
RETRIED = {ErrorClass.TRANSIENT, ErrorClass.RATE_LIMITED}
NOT_RETRIED = {ErrorClass.AUTH_EXPIRED, ErrorClass.PERMISSION_DENIED, ErrorClass.CONFIG_ERROR,
               ErrorClass.PROVIDER_CONTRACT, ErrorClass.QUOTA_EXHAUSTED, ErrorClass.DATA_ERROR}


def raw_key(provider: str, table: str) -> AssetKey:
    return AssetKey(["raw", provider, table])


def should_retry(results) -> bool:
    """Retry only when every failed connection failed with a retryable class and none has stalled."""
    failed = [r for r in results if r.error is not None]
    return bool(failed) and all(r.error.error_class in RETRIED and not r.stalled for r in failed)


def provider_assets(provider: str, connections: list[Connection]):
    settings = importlib.import_module(f"sources.{provider}.settings")
    tables = list(settings.OBJECTS)
    specs = [AssetSpec(raw_key(provider, t), group_name=provider, kinds={"dlt", "duckdb"},
                       description=f"raw_{provider}.{t}: append-only pages (payload kept whole)")
             for t in tables]

    @multi_asset(name=f"raw_{provider}", specs=specs, can_subset=False, retry_policy=INGESTION_RETRY)
    def ingest(context: AssetExecutionContext):
        from canonry.pipeline import sync_many

        results = sync_many(connections)
        totals: dict[str, int] = {}
        for result in results:
            context.log.info(f"{result.connection_id}: {result.status} ({result.connection_state}), "
                             f"{result.calls} API calls, {result.checkpoints} checkpoints, records {result.records}")
            for table, count in result.records.items():
                totals[table] = totals.get(table, 0) + count
        failed = [r for r in results if r.error is not None]
        if failed:
            metadata = {
                "error_class": failed[0].error.error_class.value,
                "connections": MetadataValue.json({r.connection_id: {
                    "status": r.status, "state": r.connection_state, "error_class": r.error.error_class.value,
                    "stalled": r.stalled} for r in failed}),
            }
            description = "; ".join(str(r.error) for r in failed)
            # Failure(allow_retries=False) stops Dagster's retry policy for classes a retry cannot fix.
            raise Failure(description=description, allow_retries=should_retry(results), metadata=metadata)
        for table in tables:
            yield MaterializeResult(asset_key=raw_key(provider, table),
                                    metadata={"rows_loaded": totals.get(table, 0)})

    return ingest
