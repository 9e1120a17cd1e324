"""The Dagster instance `canonry ui` writes: SQLite by default, dagster-postgres with DAGSTER_POSTGRES_URL, and
the warehouse pool limited to one step at a time with DuckDB (none with a PostgreSQL warehouse)."""

from __future__ import annotations

from dagster import DagsterInstance

from dagster_project.concurrency import WAREHOUSE_POOL, warehouse_op_tags, warehouse_pool
from dagster_project.instance import dagster_home_config, storage_url
from tests.pg import temporary_database


def _home(tmp_path, text: str):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(text)
    return home


def test_sqlite_by_default_with_the_warehouse_pool_limited_to_one(tmp_path, monkeypatch):
    monkeypatch.delenv("CANONRY_WAREHOUSE", raising=False)
    with DagsterInstance.from_config(str(_home(tmp_path, dagster_home_config()))) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    assert warehouse_pool() == WAREHOUSE_POOL and warehouse_op_tags()


def test_dagster_postgres_storage_when_a_url_is_given(tmp_path, monkeypatch):
    with temporary_database("canonry_dagster") as url:
        monkeypatch.setenv("DAGSTER_POSTGRES_URL", storage_url(url))
        monkeypatch.setenv("CANONRY_WAREHOUSE", url)
        text = dagster_home_config(url)
        assert url not in text  # the URL (it may hold a password) stays in the environment
        assert WAREHOUSE_POOL not in text and "concurrency" not in text  # PostgreSQL: steps in parallel
        with DagsterInstance.from_config(str(_home(tmp_path, text))) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert instance.get_runs() == []
        assert warehouse_pool() is None and warehouse_op_tags() == {}
