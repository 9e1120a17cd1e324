"""The Dagster instance (DAGSTER_HOME/dagster.yaml) that `canonry ui` writes: telemetry off, the warehouse
pool limited to one step at a time with DuckDB, and Dagster's own storage in PostgreSQL (dagster-postgres)
when a URL is given, else Dagster's default SQLite files under DAGSTER_HOME."""

from __future__ import annotations

from dagster_project.concurrency import serialised

URL_VARIABLE = "DAGSTER_POSTGRES_URL"


def dagster_home_config(postgres: str | None = None) -> str:
    """dagster.yaml. The PostgreSQL URL itself stays in the environment (`DAGSTER_POSTGRES_URL`, see
    `storage_url`): it may hold a password."""
    lines = ["telemetry:", "  enabled: false"]
    if serialised():
        lines += ["concurrency:", "  pools:", "    default_limit: 1"]
    if postgres:
        lines += ["storage:", "  postgres:", "    postgres_url:", f"      env: {URL_VARIABLE}"]
    return "\n".join(lines) + "\n"


def storage_url(url: str) -> str:
    """The URL for Dagster's SQLAlchemy engine: the psycopg2 driver we install (SQLAlchemy's default driver
    for `postgresql://` is psycopg 3, which we do not)."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme):]
    return url
