"""Dagster as a user runs it on a PostgreSQL warehouse: `dagster asset materialize` in a subprocess with the
project's default (multiprocess) executor, CANONRY_WAREHOUSE=postgresql://… and an instance of its own
(no warehouse pool: PostgreSQL takes many writers). The raw step loads the connection's partition into
PostgreSQL through dlt, the dbt step builds the staging model on dbt-postgres."""

from __future__ import annotations

import pytest
from dagster import DagsterRunStatus

from tests.dagster.test_user_runs import dagster, instance_env, last_run
from tests.helpers import query, truth
from tests.pg import temporary_database


@pytest.mark.postgres
@pytest.mark.timeout(900)  # dbt parses the project for the postgres target first (no partial parse to reuse)
def test_a_partition_materialises_into_a_postgres_warehouse(data_dir, sandbox_factory, connect_sandbox, tmp_path,
                                                             monkeypatch):
    server = sandbox_factory("hubspot", scale=15)
    connect_sandbox(server, "hubspot-acme")
    with temporary_database("postgres_dagster") as url:
        monkeypatch.setenv("CANONRY_WAREHOUSE", url)
        env = instance_env(tmp_path, tmp_path / "connections.yml")
        assert "canonry_warehouse" not in (tmp_path / "dagster_home" / "dagster.yaml").read_text()  # no pool
        done = dagster(["asset", "materialize", "--select", "raw/hubspot/contacts,staging/stg_hubspot__contacts",
                        "--partition", "hubspot-acme"], env)
        assert done.returncode == 0, done.stderr[-4000:]
        run, materialized = last_run(env)
        assert run.status == DagsterRunStatus.SUCCESS
        assert ("raw/hubspot/contacts", "hubspot-acme") in materialized
        assert {asset for asset, _ in materialized} == {"raw/hubspot/contacts", "staging/stg_hubspot__contacts"}

        expected = {str(r["id"]) for r in truth(server, "contacts")}
        staged = query("select remote_id from staging.stg_hubspot__contacts where connection_id = 'hubspot-acme'")
        assert {r["remote_id"] for r in staged} == expected  # in PostgreSQL, through dlt and dbt-postgres
        [sync_run] = query("select status, pid from ops.sync_runs")
        assert sync_run["status"] == "success"
