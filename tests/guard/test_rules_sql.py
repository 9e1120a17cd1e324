"""Warehouse SQL rules beyond the corpus: positions, rule table shape, hostile input."""

from __future__ import annotations

import random

import pytest

from canonry.guard.canonical_tables import canonical_tables
from canonry.guard.rules_soql import SOQL_RULES
from canonry.guard.rules_sql import SQL_RULES, check_sql

TABLES = canonical_tables()


@pytest.mark.parametrize(
    "query, code, token",
    [
        ("SELECT a.name FROM canonical.crm_accounts a CROSS JOIN canonical.crm_users u LIMIT 5",
         "SQL_CROSS_JOIN", "canonical.crm_users"),
        ("SELECT name FROM canonical.crm_accounts WHERE name = current_setting('x') LIMIT 1",
         "SQL_EXTERNAL_ACCESS", "current_setting"),
        ("SELECT name FROM raw_hubspot.companies LIMIT 1", "SQL_NON_CANONICAL_TABLE", "raw_hubspot"),
        ("SELECT 1;\nATTACH 'x.db'", "SQL_FORBIDDEN_STATEMENT", "ATTACH"),
        ("SELECT name FROM canonical.crm_accounts LIMIT 99999", "SQL_LIMIT_TOO_HIGH", "99999"),
    ],
)
def test_violation_positions(query: str, code: str, token: str) -> None:
    verdict = check_sql(query, "duckdb", TABLES)
    positions = [v.position for v in verdict.violations if v.code == code]
    assert positions == [query.index(token)], verdict.to_text()


def test_rule_tables_are_well_formed() -> None:
    for rules, prefix in ((SOQL_RULES, "SOQL_"), (SQL_RULES, "SQL_")):
        codes = [r.code for r in rules]
        assert len(codes) == len(set(codes))
        for rule in rules:
            assert rule.code.startswith(prefix) and rule.severity in ("error", "warning", "info")
            engine_raised = rule.code.endswith("PARSE_ERROR") or rule.code == "SOQL_COMMENT"
            assert rule.message and (rule.check is not None or engine_raised)


def test_rejected_queries_are_never_rewritten() -> None:
    verdict = check_sql("SELECT * FROM canonical.crm_accounts, canonical.crm_users", "duckdb", TABLES)
    assert verdict.verdict == "reject" and verdict.rewritten is None
    assert set(verdict.codes) == {"SQL_CROSS_JOIN", "SQL_SELECT_STAR", "SQL_NO_LIMIT"}
    assert verdict.final_query is None


FRAGMENTS = ["SELECT", "*", "FROM", "canonical.crm_accounts", "a", ",", "JOIN", "ON", "=", "WHERE", "(",
             ")", "'x'", "LIMIT", "10", ";", "COPY", "read_csv", "ATTACH", "UNION", "WITH", "AS", "--",
             "/*", "$$", "\"", "'", "::", "[", "]", "{", "}", "LATERAL", "GROUP BY", "1", "\n"]


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_fuzz_never_crashes(dialect: str) -> None:
    rng = random.Random(7)
    samples = [" ".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 16))) for _ in range(250)]
    samples += ["".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(1, 30))) for _ in range(50)]
    verdicts = [check_sql(sample, dialect, TABLES) for sample in samples]
    assert {v.verdict for v in verdicts} <= {"allow", "rewrite", "reject"}
    assert any(v.verdict == "reject" for v in verdicts)
    for sample, verdict in zip(samples, verdicts, strict=True):
        for violation in verdict.violations:
            assert violation.position is None or 0 <= violation.position <= len(sample)
