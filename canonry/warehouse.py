"""Where the warehouse lives: an embedded DuckDB file by default, or a PostgreSQL URL.

DuckDB takes one writer process at a time. Every writer serialises through one explicit mechanism,
`writer_lock(purpose)` (canonry/warehouse_lock.py): a context manager holding an inter-process lock on a
file next to the warehouse, with who holds it written into it; a waiter prints who it waits for and gives
up with a clear error after `--wait`/`CANONRY_WAREHOUSE_LOCK_TIMEOUT` seconds. `connect()` takes it for
as long as its connection is open, so every `ops` write, gate and forensics read is covered; steps that
write through another client (dlt loads, dbt builds) hold `writer_lock` around the step. Hold it for a
step, not a run: syncs extract concurrently and load one at a time. On PostgreSQL it does nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from canonry.warehouse_lock import lock_holder, set_wait_reporter, timeout_seconds, writer_lock

__all__ = ["connect", "data_dir", "lock_holder", "pipelines_dir", "postgres_url", "set_wait_reporter",
           "timeout_seconds", "warehouse_path", "writer_lock"]

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


def connect(read_only: bool = False, purpose: str = "a warehouse connection"):
    """A connection to the warehouse: PostgreSQL (canonry/postgres.py) when `CANONRY_WAREHOUSE` is a
    PostgreSQL URL; else the DuckDB file, holding the writer lock until it is closed (DuckDB refuses a
    second process while one writes, even a read-only one)."""
    import duckdb

    if postgres_url():
        from canonry import postgres

        return postgres.connect(postgres_target())
    check_warehouse()
    path = warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = writer_lock(purpose)
    lock.__enter__()
    try:
        conn = duckdb.connect(str(path), read_only=read_only)
    except BaseException:
        lock.__exit__(None, None, None)
        raise
    return LockedConnection(conn, lock)


class LockedConnection:
    """A DuckDB connection that releases the warehouse writer lock when it is closed."""

    def __init__(self, conn, lock) -> None:
        self._conn, self._lock = conn, lock

    def __getattr__(self, name: str):
        return getattr(self._conn, name)

    def execute(self, *args, **kwargs):
        self._conn.execute(*args, **kwargs)
        return self  # chained calls (`.fetchall()`) stay on the wrapper

    def close(self) -> None:
        if self._lock is None:
            return
        lock, self._lock = self._lock, None
        try:
            self._conn.close()
        finally:
            lock.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_lock", None) is not None:
            try:
                self.close()
            except Exception:  # noqa: BLE001, S110 - a finaliser must not raise
                pass


# Commands that read or write the warehouse: they check the setting before doing anything (canonry/cli.py).
WAREHOUSE_COMMANDS = frozenset({"demo", "sync", "push", "status", "replay", "trace", "sql", "ui", "tenant"})


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


def dbt_target_dir() -> Path:
    """dbt's target directory: `<data dir>/dbt_target`, or `CANONRY_DBT_TARGET_PATH` (tests share one,
    so dbt's partial parsing is reused across data dirs)."""
    explicit = os.environ.get("CANONRY_DBT_TARGET_PATH")
    path = Path(explicit) if explicit else data_dir() / "dbt_target"
    path.mkdir(parents=True, exist_ok=True)
    return path


def dbt_manifest_path() -> Path:
    """The manifest of the last dbt parse or build (read by the read API, reverse ETL and rollouts)."""
    return dbt_target_dir() / "manifest.json"
