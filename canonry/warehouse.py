"""Where the warehouse lives: an embedded DuckDB file by default, or a PostgreSQL URL."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


def data_dir() -> Path:
    """The run-state directory (warehouse file, dlt pipelines, local secret store index)."""
    path = Path(os.environ.get("CANONRY_DATA_DIR", DEFAULT_DATA_DIR)).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def warehouse_path() -> Path:
    """The DuckDB warehouse file; `CANONRY_WAREHOUSE` overrides `<data dir>/warehouse.duckdb`."""
    explicit = os.environ.get("CANONRY_WAREHOUSE")
    if explicit and "://" not in explicit:
        return Path(explicit).resolve()
    return data_dir() / "warehouse.duckdb"


def postgres_url() -> str | None:
    """A PostgreSQL URL when `CANONRY_WAREHOUSE` is one, else None (DuckDB)."""
    explicit = os.environ.get("CANONRY_WAREHOUSE", "")
    return explicit if explicit.startswith(("postgres://", "postgresql://")) else None


def pipelines_dir() -> Path:
    """dlt's working directory for our pipelines (state, load packages), kept under the data dir."""
    path = data_dir() / "dlt"
    path.mkdir(parents=True, exist_ok=True)
    return path


def connect(read_only: bool = False):
    """A connection to the warehouse: the DuckDB file, or PostgreSQL (canonry/postgres.py) when
    `CANONRY_WAREHOUSE` is a PostgreSQL URL."""
    import duckdb

    if postgres_url():
        from canonry import postgres

        return postgres.connect(postgres_target())
    check_warehouse()
    path = warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)


# Commands that read or write the warehouse: they check the setting before doing anything (canonry/cli.py).
WAREHOUSE_COMMANDS = frozenset({"demo", "sync", "push", "status", "replay", "trace", "sql", "ui"})


def dialect() -> str:
    """The warehouse's SQL dialect: duckdb (the embedded default) or postgres."""
    return "postgres" if postgres_url() else "duckdb"


def postgres_target():
    """The PostgreSQL warehouse's settings (password resolved), or None on DuckDB."""
    from canonry.postgres import parse_target

    url = postgres_url()
    return parse_target(url) if url else None


def describe() -> str:
    """Where the warehouse is, for messages: the DuckDB file, or the PostgreSQL URL with its password redacted."""
    from canonry.postgres import redact_url

    url = postgres_url()
    return redact_url(url) if url else str(warehouse_path())


def check_warehouse() -> None:
    """Raise a config_error when `CANONRY_WAREHOUSE` names a warehouse that cannot be used: an unknown URL
    scheme, a PostgreSQL URL without a host or database, a missing driver, an unreachable server, a refused
    login. A setting that cannot take effect is an error, never a silent fallback to the DuckDB file."""
    from canonry.errors import ConfigError
    from canonry.postgres import URL_FORM, redact_url

    explicit = os.environ.get("CANONRY_WAREHOUSE", "")
    if "://" in explicit and postgres_url() is None:
        raise ConfigError(f"CANONRY_WAREHOUSE={redact_url(explicit)}: unsupported warehouse URL scheme",
                          hint=f"use a DuckDB file path, or {URL_FORM}")
    if postgres_url() is not None:
        connect().close()
