"""One suite per canonical table, declared as data and derived from the canonical contract.

An expectation is (frame, GX expectation class name, kwargs). Frames: `table` (the canonical table)
and `emails` (one row per email value of the table's `emails` JSON list, for well-formedness).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from canonry.canonical import ENUMS, TABLES

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
FRESHNESS_HOURS = 24


@dataclass(frozen=True)
class Expectation:
    frame: str
    kind: str
    kwargs: dict = field(default_factory=dict)

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")


def suite_for(table: str) -> list[Expectation]:
    """The facts GE checks for a table. Each fact is checked in one place (expectations/README.md): the
    canonical key's uniqueness and not-null, and the foreign keys, are dbt tests generated from the same
    contract (`canonry.dbt_yml.column_tests`), so they are not repeated here."""
    expectations = [
        Expectation("table", "ExpectTableRowCountToBeBetween", {"min_value": 1}),
        Expectation("table", "ExpectColumnValuesToNotBeNull", {"column": "remote_id"}),
        Expectation("table", "ExpectColumnValuesToNotBeNull", {"column": "connection_id"}),
        Expectation("table", "ExpectColumnValuesToNotBeNull", {"column": "tenant_id"}),
        Expectation("table", "ExpectColumnValuesToBeInSet", {"column": "is_deleted", "value_set": [True, False]}),
        # Freshness: the newest sync of this table happened within the window.
        Expectation("table", "ExpectColumnMaxToBeBetween", {"column": "last_synced_at", "freshness_hours": FRESHNESS_HOURS}),
    ]
    for (enum_table, column), values in ENUMS.items():
        if enum_table == table:
            expectations.append(Expectation("table", "ExpectColumnValuesToBeInSet",
                                            {"column": column, "value_set": list(values)}))
    if "emails" in TABLES[table]:
        expectations.append(Expectation("emails", "ExpectColumnValuesToMatchRegex",
                                        {"column": "email", "regex": EMAIL_PATTERN}))
    if "email" in TABLES[table]:
        expectations.append(Expectation("table", "ExpectColumnValuesToMatchRegex",
                                        {"column": "email", "regex": EMAIL_PATTERN, "mostly": 1.0}))
    return expectations


SUITES: dict[str, list[Expectation]] = {table: suite_for(table) for table in TABLES}
