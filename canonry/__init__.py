"""Canonry: ATS and CRM provider APIs -> canonical warehouse tables -> reverse ETL."""

import os

__version__ = "0.1.0"

# No network but loopback: every entry point imports this package first, so telemetry of the
# stack is switched off here once, before dlt, dbt, Dagster or GX are imported.
for _name, _value in {
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "DLT_TELEMETRY": "false",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "DAGSTER_DISABLE_TELEMETRY": "1",
}.items():
    os.environ.setdefault(_name, _value)
