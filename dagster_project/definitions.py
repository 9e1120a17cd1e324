"""Assembles the Dagster definitions; no logic lives here."""

from __future__ import annotations

from collections import defaultdict

from dagster import AssetSelection, Definitions, ScheduleDefinition, define_asset_job

from dagster_project.assets.ingestion import provider_assets
from dagster_project.assets.reverse_etl import push_assets
from dagster_project.assets.transform import canonry_dbt_assets
from dagster_project.checks import gate_check
from dagster_project.resources import connections, dbt_project, dbt_resource
from dagster_project.sensors import alert_rules, failure_alerts
from expectations.gate import tables_fed_by

CONNECTIONS = connections().connections
BY_PROVIDER = defaultdict(list)
for _connection in CONNECTIONS:
    BY_PROVIDER[_connection.provider].append(_connection)

INGESTION = [provider_assets(provider, conns) for provider, conns in BY_PROVIDER.items()]
# Reverse ETL: downstream of the blocking GE checks of the canonical tables each model reads.
REVERSE_ETL = push_assets(CONNECTIONS, dbt_project().manifest_path)
CHECKS = [gate_check(table) for table in tables_fed_by(list(BY_PROVIDER))]
SCHEDULES = [
    ScheduleDefinition(
        name=f"sync_{c.id.replace('-', '_')}",
        cron_schedule=c.schedule,
        job=define_asset_job(f"sync_{c.id.replace('-', '_')}_job",
                             selection=AssetSelection.groups(c.provider).downstream()),
    )
    for c in CONNECTIONS
]

defs = Definitions(
    assets=[*INGESTION, canonry_dbt_assets, *REVERSE_ETL],
    asset_checks=CHECKS,
    schedules=SCHEDULES,
    sensors=[failure_alerts, alert_rules],
    resources={"dbt": dbt_resource()},
)
