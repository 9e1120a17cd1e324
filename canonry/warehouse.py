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
    """A DuckDB connection to the warehouse file."""
    import duckdb

    path = warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)
