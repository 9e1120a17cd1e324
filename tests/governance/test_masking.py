"""Masking: the canonical_masked views expose no pii value in clear and null every sensitive_pii value, the
pseudonyms are stable (joins on them match), `canonry sql run` reads them by default and cannot reach the
unmasked tables through them; on PostgreSQL an analyst role reads canonical_masked and nothing else.

The canonical tables here are written with the contract's own columns and types (canonry/canonical.py), a
few rows each: what a dbt build leaves, without paying for one (tests/governance/test_dsar.py builds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from canonry import canonical, ops
from canonry.governance import masking
from canonry.warehouse import connect

PEOPLE = [("c1", "Ada", "Lovelace", "ada@example.com"), ("c2", "Alan", "Turing", "alan@example.com")]


def fill_canonical(dialect: str) -> None:
    """ats_candidates and crm_contacts with the contract's columns; Ada is in both (same email)."""
    conn = connect()
    try:
        ops.ensure_tables(conn)
        conn.execute("create schema if not exists canonical")
        for table in ("ats_candidates", "crm_contacts"):
            columns = canonical.columns(table)
            ddl = ", ".join(f"{c} {canonical.warehouse_type(canonical.column_doc(table, c).type, dialect)}"
                            for c in columns)
            conn.execute(f"create table canonical.{table} ({ddl})")
            people = PEOPLE if table == "ats_candidates" else PEOPLE[:1]
            for remote_id, first, last, email in people:
                values = {"first_name": first, "last_name": last, "remote_id": remote_id, "provider": "test",
                          "connection_id": "test", "tenant_id": "acme", "is_deleted": False,
                          canonical.id_column(table): f"{table}-{remote_id}",
                          "emails": json.dumps([{"value": email, "type": "WORK"}]),
                          "custom_fields": json.dumps({"salary_expectation": "120000"})}
                names = [c for c in columns if c in values]
                conn.execute(f"insert into canonical.{table} ({', '.join(names)}) values "
                             f"({', '.join('?' for _ in names)})", [values[c] for c in names])
        masking.refresh(conn)
    finally:
        conn.close()


def sql_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "canonry.cli", "sql", "run", *args, "--json"],
                          env=os.environ.copy(), capture_output=True, text=True, timeout=120)


def test_masked_views_through_the_guarded_path(data_dir):
    fill_canonical("duckdb")
    join = ("select c.first_name, c.emails, c.custom_fields, k.first_name as contact_first from canonical.ats_candidates c "
            "join canonical.crm_contacts k on k.emails = c.emails order by c.remote_id")
    masked = sql_run(join)
    assert masked.returncode == 0, masked.stderr
    answer = json.loads(masked.stdout)
    assert "canonical_masked.ats_candidates" in answer["query"]
    text = json.dumps(answer["rows"])
    for _, first, last, email in PEOPLE:
        assert first not in text and last not in text and email not in text
    # The pseudonymised emails still join (Ada is in both tables), and the same name hashes the same.
    assert len(answer["rows"]) == 1
    first_name, _, custom_fields, contact_first = answer["rows"][0]
    assert first_name == contact_first and len(first_name) == 32
    assert custom_fields is None  # sensitive_pii: null

    # The masked schema is the only one reached: naming canonical_masked (or anything else) is refused,
    # and the policy switch reads canonical itself.
    refused = sql_run("select first_name from canonical_masked.ats_candidates")
    assert refused.returncode == 1 and "SQL_NON_CANONICAL_TABLE" in refused.stdout
    clear = sql_run("select first_name from canonical.ats_candidates order by remote_id", "--unmasked")
    assert json.loads(clear.stdout)["rows"] == [["Ada"], ["Alan"]]


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
@pytest.mark.postgres
def test_postgres_analyst_role_reads_only_the_masked_schema(warehouse):
    fill_canonical("postgres")
    done = subprocess.run([sys.executable, "-m", "canonry.cli", "mask", "grant-analyst", "--role", "governance_analyst"],
                          env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    conn = connect()
    try:
        conn.execute("set role governance_analyst")
        rows = conn.execute("select first_name, emails, custom_fields from canonical_masked.ats_candidates "
                            "order by remote_id").fetchall()
        assert len(rows) == 2 and all(len(r[0]) == 32 and r[2] is None for r in rows)
        assert "Ada" not in repr(rows) and "ada@example.com" not in repr(rows)
        for forbidden in ("select * from canonical.ats_candidates", "select * from ops.audit_log",
                          "select * from canonry_private.masking_key"):
            with pytest.raises(Exception, match="permission denied"):
                conn.execute(forbidden)
            conn.raw.rollback()
            conn.execute("set role governance_analyst")
    finally:
        conn.execute("reset role")
        conn.execute("drop owned by governance_analyst")
        conn.execute("drop role governance_analyst")
        conn.close()
