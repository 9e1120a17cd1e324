"""Execute a guarded query against the warehouse: read-only, no external access, time-limited.

The guard's parse tree is the first line of defence; the connection is the second. DuckDB: opened
``read_only`` with ``enable_external_access=false`` and ``lock_configuration=true`` (so the query cannot
read files or turn the setting back on), and interrupted after ``timeout_s`` seconds. PostgreSQL: the query
runs inside a ``READ ONLY`` transaction with a ``statement_timeout`` (set with ``SET LOCAL``, so they hold
for this transaction only), which is rolled back afterwards whatever happened: a write, a ``COPY``, a
``set role`` that slipped past the guard fails in the server, and nothing the query did outlives it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

SANDBOX_CONFIG: dict[str, Any] = {"enable_external_access": False, "lock_configuration": True}


class QueryTimeout(RuntimeError):
    pass


class WarehouseUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    elapsed_ms: float


def open_sandboxed() -> Any:
    """A read-only, no-external-access DuckDB connection to the warehouse."""
    import duckdb

    from canonry.warehouse import postgres_url, warehouse_path

    if postgres_url():
        return open_postgres()
    path = warehouse_path()
    if not path.exists():
        raise WarehouseUnavailable(f"no warehouse at {path}; load data first (e.g. `canonry demo`)")
    try:
        return duckdb.connect(str(path), read_only=True, config=dict(SANDBOX_CONFIG))
    except duckdb.Error as error:
        raise WarehouseUnavailable(f"cannot open the warehouse read-only: {error}") from None


def open_postgres() -> Any:
    """A PostgreSQL connection in a transaction of its own (not autocommit), for `run_postgres`."""
    from canonry.errors import CanonryError
    from canonry.warehouse import connect

    try:
        conn = connect()
    except CanonryError as error:
        raise WarehouseUnavailable(str(error)) from None
    conn.raw.autocommit = False
    return conn


def run_postgres(query: str, timeout_s: float, conn: Any) -> QueryResult:
    """Run a guarded query on PostgreSQL in a read-only transaction with a statement timeout, rolled back."""
    import time

    from psycopg2 import errors

    started = time.perf_counter()
    cursor = conn.raw.cursor()
    try:
        cursor.execute("SET TRANSACTION READ ONLY")
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{max(1, int(timeout_s * 1000))}ms"])
        try:
            cursor.execute(query)
        except errors.QueryCanceled:
            raise QueryTimeout(f"the query ran longer than {timeout_s:g} s and was stopped") from None
        columns = [d[0] for d in cursor.description or []]
        rows = [tuple(r) for r in cursor.fetchall()] if cursor.description else []
        return QueryResult(columns, rows, (time.perf_counter() - started) * 1000)
    finally:
        conn.raw.rollback()


def run_query(query: str, timeout_s: float = 30.0, connection: Any = None) -> QueryResult:
    """Run an already guarded query. Raises :class:`QueryTimeout` when it runs past ``timeout_s``."""
    import time

    conn = connection or open_sandboxed()
    if getattr(conn, "dialect", "duckdb") == "postgres":
        try:
            return run_postgres(query, timeout_s, conn)
        finally:
            if connection is None:
                conn.close()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            cursor = conn.execute(query)
            outcome["columns"] = [d[0] for d in cursor.description or []]
            outcome["rows"] = cursor.fetchall()
        except BaseException as error:  # handed to the caller's thread
            outcome["error"] = error

    started = time.perf_counter()
    worker = threading.Thread(target=work, name="canonry-sql-run", daemon=True)
    worker.start()
    worker.join(timeout_s)
    try:
        if worker.is_alive():
            conn.interrupt()
            worker.join(5)
            raise QueryTimeout(f"the query ran longer than {timeout_s:g} s and was stopped")
        if "error" in outcome:
            raise outcome["error"]
        return QueryResult(outcome["columns"], outcome["rows"], (time.perf_counter() - started) * 1000)
    finally:
        if connection is None:
            conn.close()
