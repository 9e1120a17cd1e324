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

    check_warehouse()
    path = warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)


# Commands that read or write the warehouse: they check the setting before doing anything (canonry/cli.py).
WAREHOUSE_COMMANDS = frozenset({"demo", "sync", "push", "status", "replay", "trace", "sql", "ui"})


def check_warehouse() -> None:
    """Raise a config_error when `CANONRY_WAREHOUSE` names a warehouse this build cannot use: a setting that
    cannot take effect is an error, never a silent fallback to the DuckDB file."""
    from canonry.errors import ConfigError

    explicit = os.environ.get("CANONRY_WAREHOUSE", "")
    if "://" in explicit and postgres_url() is None:
        raise ConfigError(f"CANONRY_WAREHOUSE={redact_url(explicit)}: unsupported warehouse URL scheme",
                          hint="use a DuckDB file path, or postgresql://user[:password]@host[:port]/database")
    if postgres_url() is not None:
        raise ConfigError(f"CANONRY_WAREHOUSE={redact_url(explicit)}: the PostgreSQL warehouse is not "
                          "supported by this build yet", hint="unset CANONRY_WAREHOUSE to use the DuckDB file")


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<unparsable URL>"
