"""Dagster: ingestion retries follow the taxonomy (no retry for auth_expired), and the failure sensor
records an alert in ops.alerts."""

from __future__ import annotations

from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from dagster_project.assets.ingestion import provider_assets
from dagster_project.sensors import failure_alerts
from tests.helpers import query


def test_auth_failure_is_not_retried_and_raises_an_alert(data_dir, sandbox_factory, connect_sandbox):
    server = sandbox_factory("hubspot", scale=30)
    good = connect_sandbox(server, "hubspot-good", objects=["owners"])
    revoked = connect_sandbox(server, "hubspot-dead", token="revoked-token", objects=["owners"])
    asset = provider_assets("hubspot", [good, revoked])
    instance = DagsterInstance.ephemeral()
    # A backfill of both partitions in one run: the revoked connection's failure does not stop the other.
    result = materialize([asset], instance=instance, raise_on_error=False,
                         tags={ASSET_PARTITION_RANGE_START_TAG: "hubspot-good", ASSET_PARTITION_RANGE_END_TAG: "hubspot-dead"})
    assert not result.success
    run_id = result.dagster_run.run_id
    restarts = instance.all_logs(run_id, of_type=DagsterEventType.STEP_RESTARTED)
    assert restarts == []  # auth_expired: no retry
    states = {r["connection_id"]: r["state"] for r in query("select * from ops.connection_state")}
    assert states == {"hubspot-good": "active", "hubspot-dead": "needs_reauth"}

    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
    context = build_run_status_sensor_context(sensor_name="canonry_failure_alerts", dagster_event=failure,
                                              dagster_instance=instance,
                                              dagster_run=result.dagster_run).for_run_failure()
    failure_alerts(context)
    alerts = query("select * from ops.alerts")
    assert len(alerts) == 1
    assert alerts[0]["error_class"] == "auth_expired" and alerts[0]["connection_id"] == "hubspot-dead"
    assert alerts[0]["severity"] == "page" and alerts[0]["run_id"] == run_id


def test_transient_failure_is_retried_from_the_checkpoint(data_dir, sandbox_factory, connect_sandbox):
    from canonry.errors import CanonryError, ErrorClass
    from canonry.pipeline import SyncResult
    from dagster_project.assets.ingestion import should_retry

    transient = SyncResult("a", "hubspot", "partial", error=CanonryError(ErrorClass.TRANSIENT, "503"))
    auth = SyncResult("b", "hubspot", "failed", error=CanonryError(ErrorClass.AUTH_EXPIRED, "401"))
    stalled = SyncResult("c", "hubspot", "failed", error=CanonryError(ErrorClass.TRANSIENT, "503"), stalled=True)
    assert should_retry([transient])
    assert not should_retry([transient, auth])
    assert not should_retry([stalled])
