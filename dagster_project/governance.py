"""The retention job and its daily schedule: `canonry retention apply` (canonry/governance/raw_retention.py)
as Dagster runs it — superseded raw versions older than the window, the ops tables and the audit log by
theirs. The windows come from the environment of the code location (CANONRY_RAW_RETENTION,
CANONRY_OPS_RETENTION, CANONRY_AUDIT_RETENTION)."""

# (No `from __future__ import annotations`: Dagster reads the op's `context` annotation as a type, not a string.)
from dagster import DefaultScheduleStatus, OpExecutionContext, ScheduleDefinition, job, op

RETENTION_CRON = "30 3 * * *"  # daily, at night: it deletes and (DuckDB) holds the writer lock briefly


@op(description="Apply raw, ops and audit-log retention")
def apply_retention(context: OpExecutionContext) -> dict:
    from canonry.governance.raw_retention import apply, configured_windows

    report = apply(configured_windows()).as_dict()
    context.log.info(f"retention: {sum(report['raw'].values())} raw versions, ops {report['ops']}, "
                     f"audit_log {report['audit_log']}")
    return report


@job(description="Retention: superseded raw versions older than the window; ops tables and audit log by theirs",
     tags={"canonry/kind": "retention"})
def retention_job() -> None:
    apply_retention()


retention_schedule = ScheduleDefinition(name="retention", cron_schedule=RETENTION_CRON, job=retention_job,
                                        default_status=DefaultScheduleStatus.RUNNING)
