"""The executor's own limits hold on the cost attacks even when the guard is bypassed.

Each attack is handed straight to ``run_query`` (no guard) on a real DuckDB warehouse; it must end
with its limit's error within the timeout plus about a second, and the process that ran the query must
stay below a memory bound. ``run_query`` is called in a forked helper so that the helper's
``RUSAGE_CHILDREN`` peak is the query process's alone (not some other test's subprocess).
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import duckdb
import pytest

from canonry.guard.rules_sql import check_sql
from canonry.guard.run import (
    ExecutionLimits,
    QueryLimitExceeded,
    QueryOutOfMemory,
    QueryTimeout,
    ResultTooLarge,
    run_query,
)

LIMITS = ExecutionLimits(timeout_s=2.0, memory_limit="256MB", threads=2, max_rows=10_000,
                         max_bytes=8 * 1024 * 1024)
GRACE_S = 1.5  # the ~1 s kill grace plus fork and result hand-over
MEMORY_BOUND_MB = 800  # under the data-segment cap (baseline + 2 x 256 MB + 256 MB headroom); measured peaks ~300 MB

#: (id, query, the limit expected to stop it, what its message must say)
ATTACKS = [
    ("recursive-cte", "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
     (QueryTimeout, QueryOutOfMemory)),
    ("range-1e11", "SELECT count(*) FROM range(100000000000)", (QueryTimeout,)),
    ("generate-series-1e11", "SELECT sum(x) FROM generate_series(1, 100000000000) t(x)", (QueryTimeout,)),
    ("repeat-1-5-gb", "SELECT length(repeat('x', 1500000000))", (QueryOutOfMemory,)),
    ("self-join-fanout", "SELECT count(*) FROM canonical.crm_contacts a JOIN canonical.crm_contacts b "
                         "ON a.account_id = b.account_id", (QueryTimeout, QueryOutOfMemory)),
    ("string-agg-fanout", "SELECT length(string_agg(a.first_name, ',')) FROM canonical.crm_contacts a "
                          "JOIN canonical.crm_contacts b ON a.account_id = b.account_id",
     (QueryOutOfMemory, QueryTimeout)),
    ("result-rows", "SELECT * FROM range(100000000)", (ResultTooLarge,)),
    ("result-bytes", "SELECT repeat('x', 90000) || i AS v FROM range(1000) t(i)", (ResultTooLarge,)),
]
MESSAGES = {QueryTimeout: "ran longer than 2 s and was stopped (raise it with --timeout)",
            QueryOutOfMemory: "more memory than its limit (256MB) and was stopped",
            ResultTooLarge: "(the cap)"}


@pytest.fixture
def big_warehouse(isolated_guard_env: Path) -> Path:
    """40,000 contacts on two accounts: the self-join yields 800 million rows."""
    path = isolated_guard_env / "warehouse.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE SCHEMA canonical")
    conn.execute("CREATE TABLE canonical.crm_contacts AS SELECT 'c' || i AS contact_id, "
                 "'first name ' || i AS first_name, 'a' || (i % 2) AS account_id FROM range(40000) t(i)")
    conn.close()
    return path


def _run_measured(query: str) -> dict:
    """run_query in a forked helper: (error class, message, seconds, peak MB of the query process)."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the helper
        os.close(reader)
        started = time.perf_counter()
        try:
            run_query(query, limits=LIMITS)
            kind, message = "ok", ""
        except Exception as error:
            kind, message = type(error).__name__, str(error)
        report = {"kind": kind, "message": message, "elapsed": time.perf_counter() - started,
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
        os.write(writer, json.dumps(report).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.mark.parametrize("attack, query, expected", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_executor_limits_hold_without_the_guard(big_warehouse: Path, attack: str, query: str,
                                                expected: tuple[type, ...]) -> None:
    report = _run_measured(query)

    assert report["kind"] in {cls.__name__ for cls in expected}, f"{attack}: {report}"
    limit = next(cls for cls in expected if cls.__name__ == report["kind"])
    assert issubclass(limit, QueryLimitExceeded) and MESSAGES[limit] in report["message"]
    assert report["elapsed"] < LIMITS.timeout_s + GRACE_S, f"{attack} stopped after {report['elapsed']:.2f} s"
    assert report["peak_mb"] < MEMORY_BOUND_MB, f"{attack}: the query process reached {report['peak_mb']:.0f} MB"


def test_the_guard_refuses_the_same_attacks() -> None:
    """First line of defence: every cost attack above (except the plain result-size ones) is refused."""
    sizes = {"crm_contacts": 40000}
    for attack, query, _ in ATTACKS:
        if attack.startswith("result-"):
            continue
        assert check_sql(query, "duckdb", sizes=sizes).verdict == "reject", attack


def test_a_query_within_the_limits_returns_its_rows(big_warehouse: Path) -> None:
    result = run_query("SELECT account_id, count(*) AS n FROM canonical.crm_contacts GROUP BY 1 ORDER BY 1",
                       limits=LIMITS)
    assert result.columns == ["account_id", "n"]
    assert result.rows == [("a0", 20000), ("a1", 20000)]


def test_invalid_limits_are_errors() -> None:
    with pytest.raises(ValueError, match="memory limit"):
        ExecutionLimits(memory_limit="lots")
    with pytest.raises(ValueError, match="threads"):
        ExecutionLimits(threads=0)


def test_sql_check_estimates_fanout_from_the_warehouse_sizes(big_warehouse: Path) -> None:
    """Through the CLI: the table sizes come from the warehouse itself (duckdb_tables().estimated_size)."""
    from typer.testing import CliRunner

    from canonry.guard.canonical_tables import load_table_sizes
    from canonry.guard.cli import sql_app

    assert load_table_sizes() == {"crm_contacts": 40000}
    self_join = ("SELECT count(*) FROM canonical.crm_contacts a JOIN canonical.crm_contacts b "
                 "ON a.account_id = b.account_id")
    result = CliRunner().invoke(sql_app, ["check", self_join])
    assert result.exit_code == 1
    assert "SQL_JOIN_FANOUT" in result.stdout and "1,600,000,000 rows" in result.stdout
    on_key = ("SELECT a.first_name FROM canonical.crm_contacts a JOIN canonical.crm_contacts b "
              "ON a.contact_id = b.contact_id LIMIT 5")
    assert CliRunner().invoke(sql_app, ["check", on_key]).exit_code == 0
