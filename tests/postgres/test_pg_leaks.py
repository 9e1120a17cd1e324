"""The PostgreSQL warehouse's password is a credential like any other: given in the URL (as a secret
reference, or written out), it reaches no file under the data dir (dlt pipeline dir and trace, dbt target
artifacts and logs), no warehouse table, no dlt state, no captured log and no CLI output.

(The server here trusts local logins and ignores the password; it still travels every path a real one
would: psycopg2, dlt's destination credentials, dbt's profile.)"""

from __future__ import annotations

import logging

import pytest
from dlt.common.versioned_state import decompress_state
from typer.testing import CliRunner

from canonry.cli import app
from canonry.sandbox import DEFAULT_TOKENS
from canonry.warehouse import connect
from tests.conftest import write_connections
from tests.pg import temporary_database

PASSWORD = "pg-leak-test-password-91ab7c"
runner = CliRunner()


def _warehouse_text() -> bytes:
    chunks: list[str] = []
    conn = connect()
    try:
        tables = conn.execute("select table_schema, table_name from information_schema.tables "
                              "where table_schema not in ('pg_catalog', 'information_schema')").fetchall()
        for schema, table in tables:
            cursor = conn.execute(f'select * from "{schema}"."{table}"')
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            chunks.append(repr(rows))
            if table == "_dlt_pipeline_state":
                chunks += [repr(decompress_state(row[columns.index("state")])) for row in rows]
    finally:
        conn.close()
    assert ("canonical", "crm_contacts") in tables and ("ops", "query_audit") in tables
    return "\n".join(chunks).encode()


@pytest.mark.postgres
@pytest.mark.parametrize("password", ["env:CANONRY_TEST_PG_PASSWORD", PASSWORD], ids=["reference", "literal"])
def test_the_postgres_password_reaches_no_file_table_state_log_or_output(data_dir, sandbox_factory, tmp_path,
                                                                         monkeypatch, caplog, password):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CANONRY_TEST_PG_PASSWORD", PASSWORD)
    monkeypatch.setenv("CANONRY_TEST_HUBSPOT_KEY", DEFAULT_TOKENS["hubspot"])
    server = sandbox_factory("hubspot", scale=60)
    config = tmp_path / "connections.yml"
    write_connections(config, [{"id": "hubspot-leak", "tenant": "acme", "provider": "hubspot",
                                "auth": {"kind": "api_key", "secret": "env:CANONRY_TEST_HUBSPOT_KEY"},
                                "base_url": server.base_url}])
    with temporary_database() as url:
        monkeypatch.setenv("CANONRY_WAREHOUSE", url.replace("postgres@", f"postgres:{password}@"))
        outputs = []
        for args in (["sync", "--config", str(config)], ["status"], ["status", "--json"],
                     ["sql", "run", "select count(*) from canonical.crm_contacts"], ["sql", "run", "drop table x"]):
            result = runner.invoke(app, args)
            outputs.append(result.output)
            if args[0] == "sync":
                assert result.exit_code == 0, result.output
        warehouse = _warehouse_text()

    secret = PASSWORD.encode()
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in files) and any("dlt" in p.parts for p in files)
    assert any(p.name == "trace.pickle" for p in files)  # dlt's trace: its config values are searched too
    for path in files:
        assert secret not in path.read_bytes(), f"the warehouse password is in {path}"
    assert secret not in warehouse, "the warehouse password is in a table or dlt state"
    assert secret not in caplog.text.encode(), "the warehouse password is in the captured logs"
    for output in outputs:
        assert PASSWORD not in output, output
