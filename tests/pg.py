"""PostgreSQL for tests: each test creates its own database and drops it (127.0.0.1:5432, user postgres).

Without a reachable server a PostgreSQL test skips, except under CI=true, where it fails: CI has the server."""

from __future__ import annotations

import os
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


@contextmanager
def temporary_database(prefix: str = "canonry_test") -> Iterator[str]:
    """A fresh database; yields its URL and drops it afterwards (closing what still holds it)."""
    from canonry.postgres import scratch_database

    require_postgres()
    with scratch_database(prefix, HOST, PORT, USER) as url:
        yield url


# Parametrise a test by warehouse: `@pytest.mark.parametrize("warehouse", WAREHOUSES, indirect=True)`.
WAREHOUSES = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
