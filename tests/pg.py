"""PostgreSQL for tests: each test creates its own database and drops it (127.0.0.1:5432, user postgres).

Without a reachable server a PostgreSQL test skips, except under CI=true, where it fails: CI has the server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"
ADMIN_DSN = {"host": HOST, "port": PORT, "user": USER, "dbname": "postgres", "connect_timeout": 3}


def _admin():
    import psycopg2

    conn = psycopg2.connect(**ADMIN_DSN)
    conn.autocommit = True
    return conn


def require_postgres() -> None:
    try:
        _admin().close()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server decides skip/fail alike
        message = f"PostgreSQL at {HOST}:{PORT} is unreachable: {exc}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + " (CI=true: a PostgreSQL test may not skip)")
        pytest.skip(message)


# Unique to this pytest process (other runs, other xdist workers, other engineers share the server).
PROCESS_TOKEN = uuid.uuid4().hex[:10]
_in_use: set[str] = set()


@contextmanager
def temporary_database(prefix: str = "canonry_test", reuse_name: bool = False) -> Iterator[str]:
    """A fresh database; yields its URL and drops it afterwards (closing what still holds it).

    `reuse_name`: the same name each time in this process (unless that database is still in use), so that
    what is keyed on the URL (dbt's partial parsing) carries over from one test to the next."""
    from canonry.postgres import scratch_database

    require_postgres()
    suffix = PROCESS_TOKEN if reuse_name and f"{prefix}_{PROCESS_TOKEN}" not in _in_use else None
    with scratch_database(prefix, HOST, PORT, USER, suffix=suffix) as url:
        name = url.rsplit("/", 1)[1]
        _in_use.add(name)
        try:
            yield url
        finally:
            _in_use.discard(name)


# Parametrise a test by warehouse: `@pytest.mark.parametrize("warehouse", WAREHOUSES, indirect=True)`.
WAREHOUSES = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
