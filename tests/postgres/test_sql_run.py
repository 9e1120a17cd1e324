"""`canonry sql run` on PostgreSQL: the guard (postgres dialect) refuses PostgreSQL's escapes, and the query
runs in a read-only transaction with a statement timeout, rolled back: the second line of defence holds
even for a statement the guard never saw. Every check is audited in ops.query_audit."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from canonry.cli import app
from canonry.guard.run import QueryTimeout, run_query
from canonry.pipeline import sync
from tests.helpers import query
from tests.reliability.providers import build_canonical

runner = CliRunner()

ESCAPES = [
    "select pg_read_file('/etc/passwd')",
    "copy canonical.crm_contacts to program 'id'",
    "select * from dblink('host=127.0.0.1', 'select 1') as t(a int)",
    "select lo_import('/etc/passwd')",
    "set role postgres",
    "delete from canonical.crm_contacts",
    "update canonical.crm_contacts set first_name = 'x'",
]


@pytest.fixture
def pg_warehouse(request, sandbox_factory, connect_sandbox):
    request.getfixturevalue("warehouse")
    server = sandbox_factory("hubspot", scale=20)
    assert sync(connect_sandbox(server, "hubspot-sql", objects=["contacts", "companies", "owners"])).status == "success"
    build_canonical("hubspot")


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
@pytest.mark.postgres
def test_sql_run_on_postgres_guards_runs_read_only_and_audits(warehouse, pg_warehouse):
    ran = runner.invoke(app, ["sql", "run", "select first_name, last_name from canonical.crm_contacts "
                                            "where provider = 'hubspot' order by remote_id", "--json"])
    assert ran.exit_code == 0, ran.output
    answer = json.loads(ran.output)
    assert answer["columns"] == ["first_name", "last_name"] and len(answer["rows"]) == 20

    for statement in ESCAPES:
        refused = runner.invoke(app, ["sql", "run", statement, "--json"])
        assert refused.exit_code == 1, (statement, refused.output)
        assert json.loads(refused.output)["verdict"] == "reject", statement
    assert query("select count(*) as n from canonical.crm_contacts")[0]["n"] == 20
    # The cost rules' table sizes come from PostgreSQL too (estimates, or a count before any statistics).
    from canonry.guard.canonical_tables import load_table_sizes

    assert load_table_sizes()["crm_contacts"] == 20

    audit = query("select command, verdict from ops.query_audit where kind = 'sql'")
    assert len(audit) == 1 + len(ESCAPES)
    assert sorted(r["verdict"] for r in audit) == ["reject"] * len(ESCAPES) + ["rewrite"]


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
@pytest.mark.postgres
def test_the_postgres_transaction_is_read_only_and_time_limited_without_the_guard(warehouse, pg_warehouse):
    import psycopg2

    for write in ("delete from canonical.crm_contacts", "create table canonical.planted (a int)",
                  "set session authorization default; drop schema canonical cascade"):
        with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
            run_query(write, timeout_s=5)
    with pytest.raises(QueryTimeout):
        run_query("select pg_sleep(5)", timeout_s=0.3)
    # Nothing above outlived its transaction; the session settings did not leak into the next query.
    assert query("select count(*) as n from canonical.crm_contacts")[0]["n"] == 20
    assert run_query("select current_setting('statement_timeout') as t", timeout_s=7).rows == [("7s",)]
