# Note: no `from __future__ import annotations` here: Dagster inspects the context annotation at runtime.
"""The webhook drain as a Dagster run: a sensor polls the intake journal (`canonry webhooks serve` writes
it) and, when events are pending, requests one run of `webhooks_drain_job`. The run's single op is
`canonry webhooks drain` (canonry.webhooks.drain): events to raw, an incremental sync per connection with
id-only events, a dbt build of the affected lineage; every dbt model that build wrote is recorded as a
materialisation of its asset (`canonical/ats_candidates`, …), so the UI shows the tables a webhook refreshed.

The run key is the pending set (highest pending seq and count): the same pending events are requested
once; a failed drain is requested again when new events arrive (or drained by `canonry webhooks drain`)."""

import json
from pathlib import Path

from dagster import (
    AssetMaterialization,
    DefaultSensorStatus,
    Failure,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    job,
    op,
    sensor,
)

from dagster_project.assets.transform import CanonryTranslator
from dagster_project.concurrency import warehouse_op_tags, warehouse_pool

DRAIN_JOB = "webhooks_drain_job"
SENSOR_INTERVAL_S = 30


def model_keys(manifest_path: Path) -> dict[str, list[str]]:
    """dbt model name -> its asset key path (the same translator as the dbt assets)."""
    nodes = json.loads(manifest_path.read_text())["nodes"].values()
    translator = CanonryTranslator()
    return {n["name"]: translator.get_asset_key(n).path for n in nodes if n["resource_type"] == "model"}


def drain_job(config_path: Path, manifest_path: Path) -> JobDefinition:
    """The job whose one op drains the journal (connections read from `config_path` at run time)."""

    @op(name="drain_webhooks", pool=warehouse_pool(), tags=warehouse_op_tags(), out={},
        description="canonry webhooks drain: journal -> raw, id-only events -> one incremental sync per "
                    "connection, then the affected lineage built")
    def drain_webhooks(context: OpExecutionContext):
        from canonry.transform import build_for
        from canonry.validation import load_connections
        from canonry.webhooks.drain import drain

        builds = []

        def build_and_keep(providers: list[str]):
            builds.append(build_for(providers))
            return builds[-1]

        result = drain(load_connections(config_path, require_tokens=False), build_for=build_and_keep)
        context.log.info(f"{result.events} events: {result.applied} applied, {result.dead} dead-lettered, "
                         f"{result.waiting} waiting; raw rows {result.rows}; syncs {result.synced or 'none'}")
        keys = model_keys(manifest_path)
        for node in (n for b in builds for n in b.nodes):
            if node.resource_type == "model" and node.status == "success" and node.name in keys:
                yield AssetMaterialization(asset_key=keys[node.name], description="rebuilt by the webhook drain",
                                           metadata={"drained_events": result.applied})
        if result.errors:
            raise Failure(description="; ".join(result.errors), allow_retries=False,
                          metadata={"raw_rows": MetadataValue.json(result.rows)})

    @job(name=DRAIN_JOB, tags={"canonry/kind": "webhooks"},
         description="Drain the webhook intake journal into raw and build what it changed")
    def webhooks_drain_job():
        drain_webhooks()

    return webhooks_drain_job


def drain_sensor(drain: JobDefinition) -> SensorDefinition:
    """Requests `drain` when the intake journal has pending events (skips otherwise)."""

    @sensor(name="canonry_webhooks_drain", job=drain, minimum_interval_seconds=SENSOR_INTERVAL_S,
            default_status=DefaultSensorStatus.RUNNING)
    def webhooks_drain(context: SensorEvaluationContext):
        from canonry.webhooks.journal import pending_mark

        mark = pending_mark()
        if mark is None:
            return SkipReason("no webhook journal yet: `canonry webhooks serve` has received nothing")
        count, last = mark
        if not count:
            return SkipReason("no pending webhook events")
        return RunRequest(run_key=f"webhooks-{last}-{count}", tags={"canonry/pending_events": str(count)})

    return webhooks_drain
