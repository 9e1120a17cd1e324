# Note: no `from __future__ import annotations` here: Dagster inspects the context annotation at runtime.
"""Raw ingestion assets: one multi-asset per provider (keys `raw/<slug>/<table>`, group `<slug>`),
partitioned by connection: one partition per connection of that provider in the connections file (read
when the code location loads, so adding a connection adds its partition on reload, without a code change).
A run of partition `hubspot-acme` syncs that connection only, through canonry.pipeline.

Subsetting: any set of raw tables can be materialised alone (`raw/hubspot/contacts`): the connection is
synced with its `objects` narrowed to the selected ones (helper tables, e.g. Greenhouse's
`<object>_key_scans`, follow their object). A provider with no connection keeps its raw tables in the graph
as source assets of its group (what the dbt models read), not materialisable.

A connection the validation rejected (an unset secret, …) keeps its partition; running it fails at once with
its validation problems (class `config_error`), every other connection is unaffected.

Retries follow the error taxonomy (DESIGN.md): `transient` and `rate_limited` failures are retried with
exponential back-off and jitter — each retry resumes from the last checkpoint; `auth_expired`,
`permission_denied`, `config_error` (and `provider_contract`, `quota_exhausted`, and a stalled connection)
fail at once, without retry."""


import functools

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
    StaticPartitionsDefinition,
    multi_asset,
)

from canonry import providers
from canonry.config import Connection
from canonry.errors import ErrorClass
from dagster_project.concurrency import warehouse_op_tags, warehouse_pool

INGESTION_RETRY = RetryPolicy(max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
RETRIED = {ErrorClass.TRANSIENT, ErrorClass.RATE_LIMITED}
NOT_RETRIED = {ErrorClass.AUTH_EXPIRED, ErrorClass.PERMISSION_DENIED, ErrorClass.CONFIG_ERROR,
               ErrorClass.PROVIDER_CONTRACT, ErrorClass.QUOTA_EXHAUSTED, ErrorClass.DATA_ERROR}
OWNER = "team:data-platform"


def raw_key(provider: str, table: str) -> AssetKey:
    return AssetKey(["raw", provider, table])


def should_retry(results) -> bool:
    """Retry only when every failed connection failed with a retryable class and none has stalled."""
    failed = [r for r in results if r.error is not None]
    return bool(failed) and all(r.error.error_class in RETRIED and not r.stalled for r in failed)


def raw_tables(provider: str, dbt_sources: list[str] = ()) -> list[str]:
    """The provider's objects, then the other raw tables its dbt sources read (helper tables such as
    `<object>_key_scans` or `full_passes`, which the sync writes alongside the objects)."""
    objects = list(providers.spec(provider).object_names)
    return objects + [t for t in dbt_sources if t not in objects]


def objects_for(provider: str, tables: set[str]) -> list[str] | None:
    """The objects to sync so that these raw tables are written; None: all of them (a helper table not
    tied to one object, e.g. Ashby's `full_passes`, is written by every object's pass)."""
    objects = list(providers.spec(provider).object_names)
    wanted: list[str] = []
    for table in tables:
        base = table.removesuffix("_key_scans")
        if base not in objects:
            return None
        wanted.append(base)
    return [o for o in objects if o in wanted]


def narrowed(connection: Connection, objects: list[str] | None) -> Connection | None:
    """The connection limited to `objects` (None: as configured); None when it syncs none of them."""
    if objects is None:
        return connection
    keep = [o for o in objects if connection.objects is None or o in connection.objects]
    return connection.model_copy(update={"objects": keep}) if keep else None


def connection_partitions(provider: str, connections: list[Connection]) -> StaticPartitionsDefinition:
    """One partition per connection of the provider (the same object for every asset of the provider)."""
    return _partitions(tuple(c.id for c in connections if c.provider == provider))


@functools.cache
def _partitions(connection_ids: tuple[str, ...]) -> StaticPartitionsDefinition:
    return StaticPartitionsDefinition(list(connection_ids))


def unconfigured_provider_specs(provider: str, tables: list[str]) -> list[AssetSpec]:
    """Raw tables of a provider no connection uses: shown in its group, not materialisable."""
    return [AssetSpec(raw_key(provider, t), group_name=provider, kinds={"dlt", "duckdb"}, owners=[OWNER],
                      description=f"raw_{provider}.{t} (no {provider} connection in the connections file)")
            for t in tables]


def provider_assets(provider: str, connections: list[Connection], tables: list[str] | None = None,
                    problems: dict[str, str] | None = None):
    """The raw multi-asset of one provider, partitioned by its connections. `problems`: connection id ->
    its validation problems (a broken connection's partition fails with them)."""
    tables = tables or raw_tables(provider)
    problems = problems or {}
    by_id = {c.id: c for c in connections if c.provider == provider}
    broken = "".join(f"\n\nBroken connection {cid}: {text}" for cid, text in problems.items() if cid in by_id)
    specs = [AssetSpec(raw_key(provider, t), group_name=provider, kinds={"dlt", "duckdb"}, owners=[OWNER],
                       skippable=True,
                       description=f"raw_{provider}.{t}: append-only pages (payload kept whole), one partition "
                                   f"per connection{broken}")
             for t in tables]

    @multi_asset(name=f"raw_{provider}", specs=specs, can_subset=True, retry_policy=INGESTION_RETRY,
                 partitions_def=connection_partitions(provider, connections), pool=warehouse_pool(),
                 op_tags=warehouse_op_tags())
    def ingest(context: AssetExecutionContext):
        from canonry.pipeline import sync_many
        from canonry.rollout.pause import apply_pauses

        selected = {key.path[-1] for key in context.selected_asset_keys}
        objects = None if selected >= set(tables) else objects_for(provider, selected)
        connection_ids = context.partition_keys if context.has_partition_key_range else [context.partition_key]
        invalid = [f"[config_error] connection={cid}: {problems[cid]}" for cid in connection_ids if cid in problems]
        chosen = [c for c in (narrowed(by_id[cid], objects) for cid in connection_ids if cid not in problems)
                  if c is not None]
        chosen, held = apply_pauses(chosen, f"dagster run {context.run.run_id}")
        for paused in held:  # canonry pause: recorded in ops.pause_skips, visible in the run's log
            context.log.warning(f"skipped: {paused.describe()}")
        context.log.info(f"syncing {', '.join(c.id for c in chosen) or 'nothing'}"
                         + (f" (objects {', '.join(objects)})" if objects is not None else ""))
        results = sync_many(chosen)
        totals: dict[str, int] = {}
        for result in results:
            context.log.info(f"{result.connection_id}: {result.status} ({result.connection_state}), "
                             f"{result.calls} API calls, {result.checkpoints} checkpoints, records {result.records}")
            for table, count in result.records.items():
                totals[table] = totals.get(table, 0) + count
        failed = [r for r in results if r.error is not None]
        if invalid and not failed:
            # A connection the validation rejected (its partition): its problems, file:line, no retry.
            raise Failure(description="; ".join(invalid), allow_retries=False, metadata={"error_class": "config_error"})
        if failed:
            metadata = {
                "error_class": failed[0].error.error_class.value,
                "connections": MetadataValue.json({r.connection_id: {
                    "status": r.status, "state": r.connection_state, "error_class": r.error.error_class.value,
                    "stalled": r.stalled} for r in failed}),
            }
            description = "; ".join([*(str(r.error) for r in failed), *invalid])
            # Failure(allow_retries=False) stops Dagster's retry policy for classes a retry cannot fix.
            raise Failure(description=description, allow_retries=should_retry(results) and not invalid,
                          metadata=metadata)
        all_objects = list(providers.spec(provider).object_names)
        synced = {o for c in chosen for o in (c.objects or all_objects)}
        for table in tables:
            written_by = objects_for(provider, {table})
            if table in selected and (written_by is None or written_by[0] in synced):
                yield MaterializeResult(asset_key=raw_key(provider, table),
                                        metadata={"rows_loaded": totals.get(table, 0)})

    return ingest
