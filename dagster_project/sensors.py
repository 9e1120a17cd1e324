"""Run-failure sensor: every failed run becomes an alert row in `ops.alerts` (job, run, connection,
error class, message), which `canonry status` and any notifier read."""

import re
import uuid
from datetime import UTC, datetime

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DagsterEventType,
    DefaultSensorStatus,
    RunFailureSensorContext,
    run_failure_sensor,
)

from canonry import ops

_CLASS = re.compile(r"\[(auth_expired|permission_denied|rate_limited|quota_exhausted|transient|provider_contract|"
                    r"config_error|data_error)\]")
_CONNECTION = re.compile(r"connection=([a-z0-9][a-z0-9_\-]*)")
SEVERITY = {"auth_expired": "page", "permission_denied": "page", "config_error": "page",
            "provider_contract": "ticket", "quota_exhausted": "info"}


def alerts_for(context: RunFailureSensorContext) -> list[dict]:
    """One alert per failed step (per connection named in its error), else one for the run."""
    run = context.dagster_run
    messages = []
    for record in context.instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        data = event.step_failure_data if event else None
        if data and data.error:
            messages.append(data.error.message)
    if not messages:
        messages = [context.failure_event.message or "run failed"]
    alerts = []
    for message in messages:
        for part in message.split("; ") if "; [" in message else [message]:
            error_class = (_CLASS.search(part) or [None, None])[1]
            connection = (_CONNECTION.search(part) or [None, None])[1]
            alerts.append({
                "alert_id": uuid.uuid4().hex[:12], "raised_at": datetime.now(UTC), "source": "dagster",
                "severity": SEVERITY.get(error_class or "", "warning"), "job_name": run.job_name,
                "run_id": run.run_id, "connection_id": connection, "error_class": error_class,
                "message": part[:2000],
            })
    return alerts


@run_failure_sensor(name="canonry_failure_alerts", minimum_interval_seconds=30,
                    default_status=DefaultSensorStatus.RUNNING)
def failure_alerts(context: RunFailureSensorContext) -> None:
    alerts = alerts_for(context)
    ops.append("alerts", alerts)
    context.log.info(f"recorded {len(alerts)} alert(s) for run {context.dagster_run.run_id}")


# Evaluates the dbt models' automation conditions (dagster_project/assets/transform.py) once the daemon runs.
automation = AutomationConditionSensorDefinition(
    "canonry_automation", target=AssetSelection.all(), default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60)
