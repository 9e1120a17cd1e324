"""The canonical tables built on DuckDB and on PostgreSQL from the same sandbox seed are equal row for row:
the same sync of each portable provider into both warehouses, the same dbt models (adapter.dispatch macros
for what the SQL dialects spell differently), every column of every CRM table compared after export.

Left out of the comparison: `_load_id` and `last_synced_at` (which load, and when: two syncs, two times).
JSON columns are compared as parsed values (DuckDB writes `{"value":…,"type":…}`, jsonb `{"type": …}`)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from canonry.canonical import id_column
from canonry.pipeline import sync
from canonry.postgres import PORTABLE_PROVIDERS
from tests.helpers import query
from tests.pg import temporary_database
from tests.reliability.providers import build_canonical
from tests.sources.test_salesforce import oauth_connection

CRM_TABLES = ("crm_accounts", "crm_contacts", "crm_leads", "crm_opportunities", "crm_stages", "crm_users",
              "crm_notes", "crm_tasks", "crm_engagements")
LINEAGE_COLUMNS = ("_load_id", "last_synced_at")
SCALE = 60


def _value(value):
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal | float):
        return round(float(value), 6)
    return value


def _export() -> dict[str, dict[str, dict]]:
    out = {}
    for table in CRM_TABLES:
        rows = query(f"select * from canonical.{table}")
        out[table] = {row[id_column(table)]: {k: _value(v) for k, v in row.items() if k not in LINEAGE_COLUMNS}
                      for row in rows}
    return out


def _sync_and_build(connections) -> dict[str, dict[str, dict]]:
    for connection in connections:
        result = sync(connection)
        assert result.status == "success", (connection.id, result.error)
    for provider in sorted({c.provider for c in connections}):
        build_canonical(provider)
    return _export()


@pytest.mark.postgres
def test_canonical_tables_on_duckdb_and_postgres_are_equal_row_for_row(data_dir, sandbox_factory, connect_sandbox,
                                                                       monkeypatch):
    assert set(PORTABLE_PROVIDERS) == {"hubspot", "salesforce", "pipedrive"}  # the CRM providers, all here
    hubspot = sandbox_factory("hubspot", scale=SCALE, seed=11)
    pipedrive = sandbox_factory("pipedrive", scale=SCALE, seed=11)
    salesforce = sandbox_factory("salesforce", scale=SCALE, seed=11)
    connections = [connect_sandbox(hubspot, "hubspot-same"), connect_sandbox(pipedrive, "pipedrive-same"),
                   oauth_connection(salesforce, connect_sandbox, monkeypatch, "sf-same")]

    on_duckdb = _sync_and_build(connections)
    # The same connections again, from scratch, into PostgreSQL (dlt's local pipeline state removed).
    shutil.rmtree(data_dir / "dlt")
    with temporary_database() as url:
        monkeypatch.setenv("CANONRY_WAREHOUSE", url)
        on_postgres = _sync_and_build(connections)

    for table in CRM_TABLES:
        assert on_duckdb[table], f"{table} is empty: the comparison would prove nothing"
        assert set(on_postgres[table]) == set(on_duckdb[table]), f"{table}: different ids"
        for key, row in on_duckdb[table].items():
            assert on_postgres[table][key] == row, f"{table} {key}: {row} != {on_postgres[table][key]}"
