"""Tests as data: every labelled query in corpus_soql.yml / corpus_sql.yml gets its verdict and codes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from canonry.guard.canonical_tables import canonical_tables
from canonry.guard.catalog import Catalog
from canonry.guard.rules_soql import SOQL_RULES, SoqlPolicy, check_soql
from canonry.guard.rules_sql import SQL_RULES, SqlPolicy, check_sql
from canonry.guard.soql_dialect import parse_soql, to_soql

HERE = Path(__file__).parent
SOQL_CASES = yaml.safe_load((HERE / "corpus_soql.yml").read_text(encoding="utf-8"))
SQL_CASES = yaml.safe_load((HERE / "corpus_sql.yml").read_text(encoding="utf-8"))
CATALOG = Catalog.default()
TABLES = canonical_tables()


def _check_case(case: dict, verdict) -> None:
    assert verdict.verdict == case["verdict"], verdict.to_text()
    assert sorted(verdict.codes) == sorted(case.get("codes", [])), verdict.to_text()
    if "rewritten" in case:
        assert verdict.rewritten == case["rewritten"]
    if case["verdict"] != "rewrite":
        assert verdict.rewritten is None
    for violation in verdict.violations:
        assert violation.message and violation.severity in ("error", "warning", "info")
        assert violation.position is None or 0 <= violation.position <= len(case["query"])


def test_corpus_size_and_coverage() -> None:
    assert len(SOQL_CASES) + len(SQL_CASES) >= 150
    assert len({c["id"] for c in SOQL_CASES}) == len(SOQL_CASES)
    assert len({c["id"] for c in SQL_CASES}) == len(SQL_CASES)
    # every rule with a check is exercised by at least one labelled query
    soql_seen = {code for case in SOQL_CASES for code in case.get("codes", [])}
    sql_seen = {code for case in SQL_CASES for code in case.get("codes", [])}
    assert {r.code for r in SOQL_RULES} <= soql_seen
    assert {r.code for r in SQL_RULES} <= sql_seen
    for cases in (SOQL_CASES, SQL_CASES):
        assert {c["verdict"] for c in cases} == {"allow", "rewrite", "reject"}


@pytest.mark.parametrize("case", SOQL_CASES, ids=[c["id"] for c in SOQL_CASES])
def test_soql_corpus(case: dict) -> None:
    policy = SoqlPolicy(**case.get("policy", {}))
    verdict = check_soql(case["query"], CATALOG, policy)
    _check_case(case, verdict)
    if verdict.passed:  # whatever passes also regenerates and re-parses to the same tree
        tree = parse_soql(case["query"])
        assert parse_soql(to_soql(tree)) == tree
    if verdict.rewritten:  # a rewrite is itself clean of the rule it fixed
        again = check_soql(verdict.rewritten, CATALOG, policy)
        assert again.verdict == "allow"


@pytest.mark.parametrize("case", SQL_CASES, ids=[c["id"] for c in SQL_CASES])
def test_sql_corpus(case: dict) -> None:
    policy = SqlPolicy(**case.get("policy", {}))
    dialect = case.get("dialect", "duckdb")
    sizes = case.get("sizes")  # table -> rows, as the warehouse would report them (cost rules)
    verdict = check_sql(case["query"], dialect, TABLES, policy, sizes=sizes)
    _check_case(case, verdict)
    if verdict.rewritten:
        again = check_sql(verdict.rewritten, dialect, TABLES, policy, sizes=sizes)
        assert again.verdict == "allow", again.to_text()
