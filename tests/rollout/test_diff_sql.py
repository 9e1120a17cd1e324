"""The diff and the swap are portable SQL: the same small live and shadow tables on DuckDB and PostgreSQL
give the same added / removed / changed rows, changed values (a JSON column included: PostgreSQL's json
has no equality), enum shifts, and a canary swap that touches one connection's rows only."""

from __future__ import annotations

import pytest

from canonry.rollout.diff import breaches, diff
from canonry.rollout.promote import PREVIOUS, swap
from canonry.warehouse import connect
from tests.pg import WAREHOUSES

COLUMNS = "application_id VARCHAR, status VARCHAR, custom_fields JSON, connection_id VARCHAR"
LIVE = [("a1", "ACTIVE", '{"x": 1}', "c1"), ("a2", "ACTIVE", '{"x": 2}', "c1"), ("a3", "HIRED", None, "c2"),
        ("a4", "REJECTED", '{"x": 4}', "c2")]
SHADOW = [("a1", "OTHER", '{"x": 1}', "c1"), ("a2", "ACTIVE", '{"x": 20}', "c1"), ("a3", "HIRED", None, "c2"),
          ("a5", "WEIRD", None, "c2")]


def _load(schema: str, rows: list[tuple]) -> None:
    conn = connect()
    try:
        conn.execute(f"create schema if not exists {schema}")
        conn.execute(f"create table {schema}.ats_applications ({COLUMNS})")
        conn.executemany(f"insert into {schema}.ats_applications values (?, ?, ?, ?)", rows)
    finally:
        conn.close()


def _rows(schema: str) -> list[tuple]:
    conn = connect()
    try:
        return [tuple(str(v) if v is not None else None for v in r) for r in conn.execute(
            f"select application_id, status, cast(custom_fields as varchar), connection_id "
            f"from {schema}.ats_applications order by application_id").fetchall()]
    finally:
        conn.close()


@pytest.mark.parametrize("warehouse", WAREHOUSES, indirect=True)
def test_diff_and_canary_swap_on_both_warehouses(warehouse):
    _load("canonical", LIVE)
    _load("canonical__shadow", SHADOW)

    [table] = diff().tables
    assert (table.rows_before, table.rows_after, table.added, table.removed, table.changed) == (4, 4, 1, 1, 2)
    changed = {c.column: c for c in table.columns}
    assert {k: c.changed for k, c in changed.items()} == {"status": 1, "custom_fields": 1}
    assert [(s["id"], s["before"], s["after"]) for s in changed["status"].samples] == [("a1", "ACTIVE", "OTHER")]
    shifts = {e.value: (e.before, e.after, e.new, e.unmapped) for e in table.enums}
    assert shifts == {"ACTIVE": (2, 1, False, False), "OTHER": (0, 1, True, False),
                      "REJECTED": (1, 0, False, False), "WEIRD": (0, 1, True, True)}
    assert diff(connections=["c2"]).tables[0].changed == 0
    assert breaches(diff(), ["changed=1", "other=1", "ats_applications.status=1", "removed=25%"]) == [
        "changed = 2 exceeds --fail-on changed=1"]

    swapped, mismatched = swap("canonical__shadow", ["ats_applications"], ["c1"], frozenset({"ats_applications"}))
    assert (swapped, mismatched) == (["ats_applications"], [])
    assert [r[0] for r in _rows("canonical")] == ["a1", "a2", "a3", "a4"]   # c2's rows untouched
    assert diff(connections=["c1"]).empty() and not diff(connections=["c2"]).empty()
    assert [r[:2] for r in _rows(PREVIOUS)] == [r[:2] for r in LIVE]   # the whole live table, kept
