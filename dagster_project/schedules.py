"""Jobs and schedules: one per connection, one per sync with a `schedule`, the freshness checks' own,
and the synthetic canary's.

A connection's job materialises its partition of the provider's raw tables, the dbt lineage downstream of
them (with the mapping seeds it reads), the GE checks of the canonical tables in it, and only the push assets
that write to that connection: the blast radius of a run is one connection. Schedules run once the daemon
runs (`default_status=RUNNING`), unless the connection says `schedule_enabled: false`.

The canary job probes every connection once (`canonry.canary`: one cheap authenticated read each, recorded in
`ops.canary_runs`); a failed probe fails the run with each failure's `[class] … connection=ID` message, which
the run-failure sensor turns into one alert per connection.

A sync with its own `schedule` (reverse_etl/<name>.yml) is left out of its connections' jobs and gets a job
of its own, `push_<sync>_job`: rebuild the canonical tables its model reads and the model (from what raw
holds; no provider is read), run their GE checks, push. Its schedule asks for one run per connection it
writes (partition), skipping connections with `schedule_enabled: false`."""

from __future__ import annotations

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    DefaultScheduleStatus,
    Failure,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    job,
    op,
    schedule,
)

from canonry.config import Connection
from dagster_project.assets.reverse_etl import PUSH_PREFIX, Push
from dagster_project.concurrency import warehouse_op_tags, warehouse_pool

FRESHNESS_CRON = "*/15 * * * *"
CANARY_CRON = "*/10 * * * *"
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


def sync_job_name(sync: str) -> str:
    return f"push_{sync}_job"


def sync_job(target: Push, exclude_checks=()):
    """The push, the dbt model it reads and the canonical tables behind it (their blocking GE checks come
    with them: the push runs after its gate, in the same run, as the push asset requires)."""
    canonical = [AssetKey(["canonical", t]) for t in target.info.canonical_parents]
    selection = AssetSelection.assets(target.key, AssetKey(["reverse_etl", target.model]), *canonical)
    for checks in exclude_checks:
        selection = selection - AssetSelection.checks(checks)
    return define_asset_job(sync_job_name(target.name), selection=selection,
                            description=f"Rebuild {target.model} and the canonical tables it reads, gate them, "
                                        f"push sync {target.name}",
                            tags={"canonry/sync": target.name})


def sync_schedule(target: Push, job, connections: list[Connection]) -> ScheduleDefinition:
    """Cron = the sync's `schedule`; one run per connection it writes whose schedules are enabled."""
    enabled = [c.id for c in connections if c.id in target.writers and c.schedule_enabled]
    status = DefaultScheduleStatus.RUNNING if enabled else DefaultScheduleStatus.STOPPED

    name = f"push_{target.name}"

    @schedule(name=name, cron_schedule=target.schedule, job=job, default_status=status,
              description=f"sync {target.name}: {target.schedule}")
    def push_schedule(context: ScheduleEvaluationContext) -> list[RunRequest] | SkipReason:
        from canonry.rollout.pause import pauses, record_skip

        # A paused destination connection (canonry pause, whole connection) gets no run; the skip is
        # recorded with the pause's reason. Paused objects do not hold a push (docs/ROLLOUTS.md).
        current = pauses()
        held = [current[cid] for cid in enabled if cid in current and current[cid].objects is None]
        for paused in held:
            record_skip(paused, f"dagster schedule {name}")
        requests = [RunRequest(run_key=None, partition_key=cid) for cid in enabled
                    if cid not in {p.connection_id for p in held}]
        if held and not requests:
            return SkipReason("paused: " + "; ".join(p.describe() for p in held))
        for paused in held:
            context.log.info(f"no push run for {paused.connection_id}: paused: {paused.describe()}")
        return requests

    return push_schedule


def freshness_schedule(checks) -> ScheduleDefinition:
    job = define_asset_job("canonical_freshness_job", selection=AssetSelection.checks(checks),
                           description="Freshness of every canonical table, per connection feeding it")
    return ScheduleDefinition(name="canonical_freshness", cron_schedule=FRESHNESS_CRON, job=job,
                              default_status=DefaultScheduleStatus.RUNNING)


def canary_job(connections: list[Connection]):
    """One step probing each connection in turn (a probe makes no retry and never waits, so the step is
    short); it writes ops.canary_runs, hence the warehouse pool."""
    ids = [c.id for c in connections]

    @op(name="canary_probes", pool=warehouse_pool(), tags=warehouse_op_tags(),
        description="The cheapest authenticated read of every connection, timed, in ops.canary_runs")
    def probes(context) -> None:
        from canonry.canary import run as run_canary
        from canonry.errors import CanonryError

        failures = []
        for connection in connections:
            try:
                result = run_canary(connection)
            except CanonryError as exc:  # no probe for this provider: a configuration problem, said as such
                failures.append(str(exc))
                continue
            context.log.info(f"{connection.id}: {'ok' if result.ok else 'failed'} "
                             f"(HTTP {result.status}) in {result.latency_ms:.0f} ms")
            if not result.ok:
                failures.append(str(result.error))
        if failures:
            raise Failure(f"{len(failures)} of {len(connections)} canary probe(s) failed: " + "; ".join(failures))

    @job(name="canary_job", description=f"Synthetic canary of {len(ids)} connection(s): {', '.join(ids)}")
    def canary():
        probes()

    return canary


def canary_schedule(job_def) -> ScheduleDefinition:
    return ScheduleDefinition(name="canonry_canary", cron_schedule=CANARY_CRON, job=job_def,
                              default_status=DefaultScheduleStatus.RUNNING,
                              description="Synthetic canary: one cheap authenticated read per connection")
