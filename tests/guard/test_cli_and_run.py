"""`canonry soql|sql check` output and exit codes, `sql run` against a real DuckDB warehouse, audit rows."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import typer
from typer.testing import CliRunner

from canonry.guard.audit import sha256
from canonry.guard.canonical_tables import canonical_tables, load_canonical_tables
from canonry.guard.cli import soql_app, sql_app
from canonry.guard.rules_sql import check_sql
from canonry.guard.run import QueryFailed, QueryTimeout, open_sandboxed, run_query

app = typer.Typer()
app.add_typer(soql_app, name="soql")
app.add_typer(sql_app, name="sql")
runner = CliRunner()


@pytest.fixture
def warehouse(isolated_guard_env: Path) -> Path:
    path = isolated_guard_env / "warehouse.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE SCHEMA canonical")
    columns = canonical_tables()["crm_accounts"]
    conn.execute(f"CREATE TABLE canonical.crm_accounts ({', '.join(f'{c} VARCHAR' for c in columns)})")
    conn.execute("INSERT INTO canonical.crm_accounts (account_id, provider, name) VALUES "
                 "('a1', 'salesforce', 'Acme'), ('a2', 'hubspot', 'Globex'), ('a3', 'pipedrive', 'Initech')")
    conn.execute("CREATE TABLE canonical.crm_extra (extra_id VARCHAR)")
    conn.close()
    return path


def _audit_rows(path: Path) -> list[tuple]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute("SELECT kind, command, question_sha256, query_sha256, verdict, codes "
                            "FROM ops.query_audit ORDER BY ts").fetchall()
    finally:
        conn.close()


def test_soql_check_json_shape_and_exit_codes(isolated_guard_env: Path) -> None:
    allowed = "SELECT Id FROM Account WHERE Name = 'Acme' LIMIT 5"
    result = runner.invoke(app, ["soql", "check", allowed, "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"verdict": "allow", "violations": [], "rewritten": None}

    result = runner.invoke(app, ["soql", "check", "SELECT Id FROM User", "--json"])
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert body["verdict"] == "rewrite" and body["rewritten"] == "SELECT Id FROM User LIMIT 200"
    assert body["violations"] == [{"code": "SOQL_NO_LIMIT", "severity": "warning", "position": None,
                                   "message": "The query has no LIMIT, so it can return any number of "
                                              "rows. Added LIMIT 200."}]

    bad = "SELECT Id FROM Account WHERE Name = 'x' LIMIT 1 FOR UPDATE"
    result = runner.invoke(app, ["soql", "check", bad, "--json"])
    assert result.exit_code == 1
    violation = json.loads(result.stdout)["violations"][0]
    assert violation["code"] == "SOQL_FOR_UPDATE" and violation["position"] == bad.index("FOR UPDATE")

    result = runner.invoke(app, ["soql", "check", "SELECT Id FROM Account LIMIT 5 WHERE Name = 'x'"])
    assert result.exit_code == 1
    assert "SOQL_PARSE_ERROR at line 1, column 32" in result.stdout and "out of place" in result.stdout

    rows = _audit_rows(isolated_guard_env / "warehouse.duckdb")
    assert [(r[0], r[1], r[4]) for r in rows] == [
        ("soql", "check", "allow"), ("soql", "check", "rewrite"), ("soql", "check", "reject"),
        ("soql", "check", "reject")]
    assert rows[0][2] == sha256(allowed) and json.loads(rows[2][5]) == ["SOQL_FOR_UPDATE"]


def test_soql_check_with_catalog_file(tmp_path: Path) -> None:
    from canonry.guard.catalog import Catalog

    path = Catalog.from_describes([{"name": "Widget__c", "fields": [{"name": "Id", "type": "id"}]}]).save(
        tmp_path / "cat.json")
    ok = runner.invoke(app, ["soql", "check", "SELECT Id FROM Widget__c LIMIT 1", "--catalog", str(path)])
    assert ok.exit_code == 0, ok.stdout
    missing = runner.invoke(app, ["soql", "check", "SELECT Id FROM Account LIMIT 1", "--catalog", str(path)])
    assert missing.exit_code == 1 and "SOQL_UNKNOWN_OBJECT" in missing.stdout


def test_sql_check_json_and_dialects() -> None:
    result = runner.invoke(app, ["sql", "check", "SELECT name FROM crm_accounts", "--json"])
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert body["verdict"] == "rewrite"
    assert body["rewritten"] == "SELECT name FROM canonical.crm_accounts LIMIT 1000"
    assert sorted(v["code"] for v in body["violations"]) == ["SQL_NO_LIMIT", "SQL_UNQUALIFIED_TABLE"]

    pg = runner.invoke(app, ["sql", "check", "SELECT pg_read_file('/etc/passwd')", "--dialect", "postgres"])
    assert pg.exit_code == 1 and "SQL_EXTERNAL_ACCESS" in pg.stdout
    bad = runner.invoke(app, ["sql", "check", "SELECT 1", "--dialect", "oracle"])
    assert bad.exit_code == 2


def test_live_information_schema_replaces_the_contract(warehouse: Path) -> None:
    tables = load_canonical_tables()
    assert set(tables) == {"crm_accounts", "crm_extra"}
    assert check_sql("SELECT extra_id FROM canonical.crm_extra LIMIT 1").verdict == "allow"
    missing = check_sql("SELECT name FROM canonical.crm_users LIMIT 1")
    assert missing.codes == ["SQL_NON_CANONICAL_TABLE"] and "does not exist" in missing.violations[0].message


def test_sql_run_executes_the_guarded_rewrite(warehouse: Path) -> None:
    result = runner.invoke(app, ["sql", "run", "SELECT name FROM canonical.crm_accounts ORDER BY name", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["query"] == "SELECT name FROM canonical.crm_accounts ORDER BY name LIMIT 1000"
    assert body["columns"] == ["name"] and body["rows"] == [["Acme"], ["Globex"], ["Initech"]]

    text = runner.invoke(app, ["sql", "run", "SELECT provider, name FROM canonical.crm_accounts "
                                             "WHERE name = 'Acme' LIMIT 5"])
    assert text.exit_code == 0
    assert text.stdout.splitlines() == ["provider\tname", "salesforce\tAcme"]
    assert [r[1] for r in _audit_rows(warehouse)] == ["run", "run"]


@pytest.mark.parametrize("query, code", [
    ("SELECT * FROM read_csv('/etc/passwd')", "SQL_EXTERNAL_ACCESS"),
    ("ATTACH 'x.db' AS x", "SQL_FORBIDDEN_STATEMENT"),
    ("DELETE FROM canonical.crm_accounts", "SQL_NOT_SELECT"),
    ("SELECT a.name FROM canonical.crm_accounts a, canonical.crm_extra e", "SQL_CROSS_JOIN"),
])
def test_sql_run_refuses_rejected_queries(warehouse: Path, query: str, code: str) -> None:
    result = runner.invoke(app, ["sql", "run", query])
    assert result.exit_code == 1
    assert "verdict: reject" in result.stdout and code in result.stdout
    conn = duckdb.connect(str(warehouse), read_only=True)
    assert conn.execute("SELECT count(*) FROM canonical.crm_accounts").fetchone() == (3,)
    conn.close()


#: slow but within every guard bound (a million rows, each hashing a 90 kB value): the executor stops it
SLOW_BUT_GUARDED = "SELECT max(md5(repeat('x', 90000) || i)) FROM range(1000000) t(i)"


def test_sql_run_statement_timeout(warehouse: Path) -> None:
    slow = SLOW_BUT_GUARDED
    assert check_sql(slow).verdict == "allow"
    result = runner.invoke(app, ["sql", "run", slow, "--timeout", "0.3"])
    assert result.exit_code == 1
    assert "ran longer than 0.3 s and was stopped" in result.stderr


def test_sql_run_result_cap_and_limit_options(warehouse: Path) -> None:
    query = "SELECT name FROM canonical.crm_accounts ORDER BY name LIMIT 3"
    capped = runner.invoke(app, ["sql", "run", query, "--max-rows", "2"])
    assert capped.exit_code == 1
    assert "more than 2 rows (the cap)" in capped.stderr and "--max-rows" in capped.stderr
    ok = runner.invoke(app, ["sql", "run", query, "--max-rows", "3", "--memory-limit", "64MB", "--threads", "1"])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines() == ["name", "Acme", "Globex", "Initech"]
    bad = runner.invoke(app, ["sql", "run", query, "--memory-limit", "lots"])
    assert bad.exit_code == 2 and "invalid limit: memory limit: 'lots' is not a size" in bad.stderr
    bad = runner.invoke(app, ["sql", "run", query, "--max-bytes", "12 parsecs"])
    assert bad.exit_code == 2 and "is not a size" in bad.stderr


def test_sql_run_refuses_cost_attacks_with_the_rule_named(warehouse: Path) -> None:
    for query, code in [("SELECT count(*) FROM range(100000000000)", "SQL_ROW_GENERATOR"),
                        ("SELECT repeat('x', 1500000000)", "SQL_LARGE_STRING"),
                        ("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
                         "SQL_RECURSIVE_QUERY")]:
        result = runner.invoke(app, ["sql", "run", query])
        assert result.exit_code == 1 and "verdict: reject" in result.stdout and code in result.stdout


def test_run_query_timeout_raises(warehouse: Path) -> None:
    with pytest.raises(QueryTimeout):
        run_query(SLOW_BUT_GUARDED, timeout_s=0.2)


def test_connection_itself_is_sandboxed(warehouse: Path, tmp_path: Path) -> None:
    """Defence in depth: even a query that skipped the guard cannot read files or unlock settings."""
    secret = tmp_path / "secret.csv"
    secret.write_text("a,b\n1,2\n")
    conn = open_sandboxed()
    try:
        with pytest.raises(QueryFailed, match="(?i)external access|disabled"):
            run_query(f"SELECT * FROM read_csv('{secret}')", connection=conn)
        with pytest.raises(QueryFailed, match="(?i)lock|configuration"):
            run_query("SET enable_external_access = true", connection=conn)
        with pytest.raises(QueryFailed, match="(?i)read.only"):
            run_query("CREATE TABLE canonical.x (i INT)", connection=conn)
    finally:
        conn.close()


def test_sql_run_without_warehouse_exits_2() -> None:
    result = runner.invoke(app, ["sql", "run", "SELECT 1"])
    assert result.exit_code == 2 and "no warehouse" in result.stderr


@pytest.mark.parametrize("query, code", [
    ("SELECT pg_read_file('/etc/passwd')", "SQL_EXTERNAL_ACCESS"),
    ("COPY (SELECT 1) TO PROGRAM 'id'", "SQL_FORBIDDEN_STATEMENT"),
    ("SET ROLE postgres", "SQL_FORBIDDEN_STATEMENT"),
    ("SELECT set_config('role', 'postgres', false)", "SQL_EXTERNAL_ACCESS"),
    ("SELECT * FROM dblink('host=10.0.0.1', 'SELECT 1') AS t(a int) LIMIT 1", "SQL_EXTERNAL_ACCESS"),
])
def test_sql_check_postgres_dialect_refuses_escapes(query: str, code: str) -> None:
    result = runner.invoke(app, ["sql", "check", query, "--dialect", "postgres", "--json"])
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["verdict"] == "reject" and code in [v["code"] for v in body["violations"]]


def test_the_guard_dialect_follows_the_warehouse(monkeypatch: pytest.MonkeyPatch) -> None:
    from canonry.guard.canonical_tables import warehouse_dialect

    assert warehouse_dialect() == "duckdb"
    monkeypatch.setenv("CANONRY_WAREHOUSE", "postgresql://postgres@127.0.0.1:5432/canonry")
    assert warehouse_dialect() == "postgres"
    assert check_sql("SELECT lo_import('/etc/passwd')", dialect=warehouse_dialect()).verdict == "reject"


def test_sql_run_while_another_process_writes_reads_a_consistent_copy(warehouse: Path) -> None:
    """A sync or build in another process holds the DuckDB file (DuckDB lets no other process open it):
    `sql run` answers from a consistent copy — the writer's last commit included — and says so."""
    import subprocess
    import sys

    writer = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "c.execute(\"insert into canonical.crm_accounts (account_id, provider, name) values "
         "('a4', 'hubspot', 'Umbrella')\"); print('ready', flush=True); time.sleep(120)", str(warehouse)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        with pytest.raises(duckdb.IOException):  # the situation: the file is locked for every other process
            duckdb.connect(str(warehouse), read_only=True)
        result = runner.invoke(app, ["sql", "run", "SELECT name FROM canonical.crm_accounts ORDER BY name",
                                     "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["rows"] == [["Acme"], ["Globex"], ["Initech"], ["Umbrella"]]
        assert "is being written by" in result.stderr and "consistent copy" in result.stderr
        assert not list((warehouse.parent / "sql_snapshots").glob("*.duckdb*"))  # the copy is removed
    finally:
        writer.kill()
        writer.wait()
