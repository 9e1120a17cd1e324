"""The canonical tables built on DuckDB and on PostgreSQL from the same sandbox seed are equal row for row:
the same sync of each of the six providers into both warehouses, the same dbt models (adapter.dispatch
macros for what the SQL dialects spell differently), every column of every ats_*/crm_* table compared
after export.

Left out of the comparison: `_load_id` and `last_synced_at` (which load, and when: two syncs, two times), and
`remote_updated_at` where it is the extraction time (objects the provider gives no timestamp).
JSON columns are compared as parsed values (DuckDB writes `{"value":…,"type":…}`, jsonb `{"type": …}`)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from canonry.canonical import ATS_TABLES, CRM_TABLES, id_column
from canonry.pipeline import sync
from canonry.postgres import portable_providers
from canonry.providers import slugs
from canonry.sandbox import DEFAULT_TOKENS
from tests.ats_truth import assert_time_to_hire_matches_truth
from tests.conftest import restore_partial_parse
from tests.helpers import query
from tests.pg import temporary_database
from tests.reliability.providers import build_canonical
from tests.sources.test_lever import oauth_connection as lever_connection
from tests.sources.test_salesforce import oauth_connection as salesforce_connection

TABLES = (*CRM_TABLES, *ATS_TABLES)
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


def _comparable(row: dict) -> dict:
    out = {k: _value(v) for k, v in row.items() if k not in LINEAGE_COLUMNS}
    if row["remote_updated_at"] is not None and row["remote_updated_at"] == row["last_synced_at"]:
        # Objects without a provider timestamp (e.g. Lever's stages) are stamped with their extraction time.
        out["remote_updated_at"] = "extraction time"
    if row["deleted_at"] is not None and row["deleted_at"] == row["last_synced_at"]:
        # Deletes learnt without a provider time (Workable's cancelled events) are dated by the read too.
        out["deleted_at"] = "extraction time"
    return out


def _export() -> dict[str, dict[str, dict]]:
    out = {}
    for table in TABLES:
        rows = query(f"select * from canonical.{table}")
        out[table] = {row[id_column(table)]: _comparable(row) for row in rows}
    return out


def _sync_and_build(connections) -> dict[str, dict[str, dict]]:
    for connection in connections:
        result = sync(connection)
        assert result.status == "success", (connection.id, result.error)
    # One build of every synced provider's lineage (each mart built once, not once per provider).
    build_canonical(*sorted({c.provider for c in connections}))
    return _export()


@pytest.mark.postgres
def test_canonical_tables_on_duckdb_and_postgres_are_equal_row_for_row(data_dir, sandbox_factory, connect_sandbox,
                                                                       monkeypatch, tmp_path_factory):
    assert portable_providers() == list(slugs())  # every provider runs on PostgreSQL: all compared here
    servers = {slug: sandbox_factory(slug, scale=SCALE, seed=11) for slug in slugs()}
    monkeypatch.setenv("CANONRY_TEST_GREENHOUSE_SAME", DEFAULT_TOKENS["greenhouse"])
    connections = [
        connect_sandbox(servers["hubspot"], "hubspot-same"),
        connect_sandbox(servers["pipedrive"], "pipedrive-same"),
        connect_sandbox(servers["ashby"], "ashby-same"),
        connect_sandbox(servers["greenhouse"], "greenhouse-same",
                        auth={"kind": "client_credentials", "secret": "env:CANONRY_TEST_GREENHOUSE_SAME"}),
        salesforce_connection(servers["salesforce"], connect_sandbox, monkeypatch, "sf-same"),
        lever_connection(servers["lever"], connect_sandbox, monkeypatch, "lever-same"),
        connect_sandbox(servers["workable"], "workable-same"),
    ]

    on_duckdb = _sync_and_build(connections)
    # The one world with every ATS synced and its sandboxes up: the analyst guide's time-to-hire query runs
    # here, as printed, and must give the sandboxes' truth (no sync of its own: suite time).
    assert_time_to_hire_matches_truth(servers)
    # The same connections again, from scratch, into PostgreSQL (dlt's local pipeline state removed).
    shutil.rmtree(data_dir / "dlt")
    with temporary_database(reuse_name=True) as url:
        monkeypatch.setenv("CANONRY_WAREHOUSE", url)
        restore_partial_parse(tmp_path_factory, data_dir)
        on_postgres = _sync_and_build(connections)

    for table in TABLES:
        assert on_duckdb[table], f"{table} is empty: the comparison would prove nothing"
        assert set(on_postgres[table]) == set(on_duckdb[table]), f"{table}: different ids"
        for key, row in on_duckdb[table].items():
            assert on_postgres[table][key] == row, f"{table} {key}: {row} != {on_postgres[table][key]}"
