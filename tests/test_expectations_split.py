"""Each fact about a canonical table is checked in one place: dbt tests (generated from the contract by
canonry/dbt_yml.py) or the GE suites (expectations/suites.py), never both (expectations/README.md)."""

from __future__ import annotations

from canonry.canonical import TABLES, columns, id_column
from canonry.dbt_yml import column_tests
from expectations.suites import SUITES

# The GE expectation that would assert the same fact as a dbt generic test.
SAME_FACT = {"unique": "ExpectColumnValuesToBeUnique", "not_null": "ExpectColumnValuesToNotBeNull",
             "relationships": None}


def test_no_fact_is_checked_by_both_dbt_and_ge():
    checked_twice = []
    for table in TABLES:
        ge = {(s.kind, s.column) for s in SUITES[table]}
        for column in columns(table):
            for test in column_tests(table, column):
                name = test if isinstance(test, str) else next(iter(test))
                assert name in SAME_FACT, f"dbt test {name!r} has no GE counterpart declared here"
                if (SAME_FACT[name], column) in ge:
                    checked_twice.append(f"{table}.{column}: {name}")
    assert not checked_twice


def test_every_canonical_key_is_still_checked_unique_and_not_null_by_dbt():
    for table in TABLES:
        assert column_tests(table, id_column(table)) == ["unique", "not_null"], table
