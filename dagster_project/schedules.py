"""Jobs and schedules: one per connection, and the freshness checks' own.

A connection's job materialises its partition of the provider's raw tables, the dbt lineage downstream of
them (with the mapping seeds it reads), the GE checks of the canonical tables in it, and only the push assets
that write to that connection: the blast radius of a run is one connection. Schedules run once the daemon
runs (`default_status=RUNNING`), unless the connection says `schedule_enabled: false`."""

from __future__ import annotations

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from canonry.config import Connection

FRESHNESS_CRON = "*/15 * * * *"
PUSH_PREFIX = "push"
SEEDS_GROUP = "mappings"


def job_name(connection: Connection) -> str:
    return f"sync_{connection.id.replace('-', '_')}_job"


def connection_job(connection: Connection, raw: AssetsDefinition, pushes: list[AssetKey], exclude_checks=()):
    lineage = AssetSelection.assets(raw).downstream() - AssetSelection.key_prefixes(PUSH_PREFIX)
    seeds = lineage.upstream() & AssetSelection.groups(SEEDS_GROUP)
    selection = lineage | seeds | AssetSelection.assets(*pushes)
    for checks in exclude_checks:
        selection = selection - AssetSelection.checks(checks)
    return define_asset_job(job_name(connection), selection=selection,
                            description=f"Sync {connection.id} ({connection.provider}), build its lineage, "
                                        f"gate it, push to it",
                            tags={"canonry/connection": connection.id})


def connection_schedule(connection: Connection, job) -> ScheduleDefinition:
    status = DefaultScheduleStatus.RUNNING if connection.schedule_enabled else DefaultScheduleStatus.STOPPED

    name = f"sync_{connection.id.replace('-', '_')}"

    @schedule(name=name, cron_schedule=connection.schedule, job=job,
              default_status=status, description=f"{connection.id}: {connection.schedule}")
    def sync_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        from canonry.rollout.pause import pauses, record_skip

        paused = pauses().get(connection.id)
        if paused is not None and paused.objects is None:  # canonry pause: the tick is skipped, with why
            record_skip(paused, f"dagster schedule {name}")
            return SkipReason(f"paused: {paused.describe()}")
        return RunRequest(partition_key=connection.id)

    return sync_schedule


def freshness_schedule(checks) -> ScheduleDefinition:
    job = define_asset_job("canonical_freshness_job", selection=AssetSelection.checks(checks),
                           description="Freshness of every canonical table, per connection feeding it")
    return ScheduleDefinition(name="canonical_freshness", cron_schedule=FRESHNESS_CRON, job=job,
                              default_status=DefaultScheduleStatus.RUNNING)
