"""Assembles the Dagster definitions; no logic lives here."""

from __future__ import annotations

import json

from dagster import Definitions

from canonry.providers import slugs
from dagster_project.assets.ingestion import provider_assets, raw_tables, unconfigured_provider_specs
from dagster_project.assets.ops import connections_asset
from dagster_project.assets.reverse_etl import load_sync_files, push_assets, pushes
from dagster_project.assets.transform import canonry_dbt_assets
from dagster_project.checks import freshness_checks, gate_checks
from dagster_project.concurrency import executor
from dagster_project.governance import retention_job, retention_schedule
from dagster_project.resources import connections_in_location, dbt_project, dbt_resource
from dagster_project.schedules import (
    canary_job,
    canary_schedule,
    connection_job,
    connection_schedule,
    freshness_schedule,
    sync_job,
    sync_schedule,
)
from dagster_project.sensors import alert_rules, automation, failure_alerts
from dagster_project.webhooks import drain_job, drain_sensor
from expectations.gate import tables_fed_by

PROVIDERS = slugs()
LOCATION = connections_in_location()
MANIFEST_PATH = dbt_project().manifest_path
DBT_SOURCES = json.loads(MANIFEST_PATH.read_text()).get("sources", {}).values()
CONNECTIONS = [c for c in LOCATION.connections if c.provider in PROVIDERS]
CONFIGURED = sorted({c.provider for c in CONNECTIONS})
PROBLEMS = {cid: LOCATION.describe_problems(cid) for cid in LOCATION.problems}
TABLES = {p: raw_tables(p, [s["name"] for s in DBT_SOURCES if s["source_name"] == p]) for p in PROVIDERS}

RAW = {p: provider_assets(p, CONNECTIONS, TABLES[p], PROBLEMS) for p in CONFIGURED}
INGESTION = list(RAW.values())
UNCONFIGURED = [spec for p in PROVIDERS if p not in RAW for spec in unconfigured_provider_specs(p, TABLES[p])]
OPS = connections_asset(LOCATION)
# Reverse ETL: one push per sync (and per written model no sync pushes), downstream of its dbt model and of
# the blocking GE checks of the canonical tables that model reads.
CANONICAL = tables_fed_by(CONFIGURED)
PUSHES = pushes(CONNECTIONS, MANIFEST_PATH, load_sync_files(), CANONICAL)
REVERSE_ETL = push_assets(CONNECTIONS, PUSHES)
CHECKS = [gate_checks(CANONICAL)] if CANONICAL else []
FRESHNESS = freshness_checks({t: [c for c in CONNECTIONS if c.schedule_enabled and t in tables_fed_by([c.provider])]
                              for t in CANONICAL}) if CANONICAL else None
JOBS = {c.id: connection_job(c, RAW[c.provider],
                             [p.key for p in PUSHES if c.id in p.writers and p.schedule is None],
                             exclude_checks=[FRESHNESS] if FRESHNESS else [])
        for c in CONNECTIONS}
SCHEDULES = [connection_schedule(c, JOBS[c.id]) for c in CONNECTIONS]
CANARY = canary_job([c for c in CONNECTIONS if c.id not in PROBLEMS]) if CONNECTIONS else None
# Webhook intake: drained by a sensor-requested run, when a connection receives webhooks.
DRAIN = drain_job(LOCATION.path, MANIFEST_PATH) if any(c.webhooks and c.webhooks.enabled for c in CONNECTIONS) else None
SYNC_JOBS = {p.name: sync_job(p, exclude_checks=[FRESHNESS] if FRESHNESS else []) for p in PUSHES if p.schedule}
SYNC_SCHEDULES = [sync_schedule(p, SYNC_JOBS[p.name], CONNECTIONS) for p in PUSHES if p.schedule]

defs = Definitions(
    assets=[*INGESTION, *UNCONFIGURED, OPS, canonry_dbt_assets, *REVERSE_ETL],
    asset_checks=[*CHECKS, *([FRESHNESS] if FRESHNESS else [])],
    jobs=[*JOBS.values(), *SYNC_JOBS.values(), retention_job, *([CANARY] if CANARY else []),
          *([DRAIN] if DRAIN else [])],
    schedules=[*SCHEDULES, *SYNC_SCHEDULES, *([freshness_schedule(FRESHNESS)] if FRESHNESS else []),
               retention_schedule, *([canary_schedule(CANARY)] if CANARY else [])],
    sensors=[failure_alerts, automation, alert_rules, *([drain_sensor(DRAIN)] if DRAIN else [])],
    resources={"dbt": dbt_resource()},
    executor=executor(),
)
