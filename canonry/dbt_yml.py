"""Renders the canonical contract (canonry/canonical.py) into the dbt properties of the canonical marts.

`python -m canonry.dbt_yml` (or `canonry dbt-docs`) writes `dbt/models/marts/_canonical__models.yml`: per
mart its description, `contract: enforced` with every column's data_type, the column descriptions (which
`persist_docs` writes into the warehouse as COMMENT ON), `meta` (classification, owner) and the key and
relationship tests; the column description ends with the class and owner (`[class: pii; owner: …]`).
The file is committed; tests/test_dbt_project.py fails when it is not current.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from canonry import canonical
from canonry.warehouse import PROJECT_ROOT

CANONICAL_YML = PROJECT_ROOT / "dbt" / "models" / "marts" / "_canonical__models.yml"

HEADER = ("# GENERATED from canonry/canonical.py by `python -m canonry.dbt_yml` (or `canonry dbt-docs`): do not edit.\n"
          "# Edit the contract there and regenerate; tests/test_dbt_project.py fails when this file is stale.\n")


def data_type(kind: str) -> str:
    """The column's data_type for the contract: the adapter's name for the logical type, chosen when dbt
    renders the file (one yml serves the DuckDB and the PostgreSQL targets)."""
    duckdb, postgres = canonical.warehouse_type(kind, "duckdb"), canonical.warehouse_type(kind, "postgres")
    if duckdb == postgres:
        return duckdb
    return f"{{{{ '{postgres}' if target.type == 'postgres' else '{duckdb}' }}}}"


def column_tests(table: str, column: str) -> list:
    if column == canonical.id_column(table):
        return ["unique", "not_null"]
    target = canonical.FOREIGN_KEYS.get(f"{table}.{column}")
    if target:
        return [{"relationships": {"arguments": {"to": f"ref('{target}')", "field": canonical.id_column(target)}}}]
    return []


def column_description(doc: canonical.ColumnDoc) -> str:
    """The column's description with its data class and owner: what dbt docs show and what `persist_docs`
    writes as the warehouse column comment (an analyst browsing the warehouse sees the class)."""
    return f"{doc.description} [class: {doc.classification}; owner: {doc.owner}]"


def model_properties(table: str) -> dict:
    columns = []
    for column in canonical.columns(table):
        doc = canonical.column_doc(table, column)
        entry: dict = {"name": column, "description": column_description(doc), "data_type": data_type(doc.type),
                       "config": {"meta": {"classification": doc.classification, "owner": doc.owner}}}
        tests = column_tests(table, column)
        if tests:
            entry["data_tests"] = tests
        columns.append(entry)
    family = "ATS" if table.startswith("ats_") else "CRM"
    return {
        "name": table,
        "description": f"{canonical.TABLE_DESCRIPTIONS[table]} Canonical: every {family} provider unioned "
                       f"(contract in canonry/canonical.py).",
        "config": {"contract": {"enforced": True},
                   "meta": {"owner": canonical.OWNERS[table.split('_', 1)[0]]}},
        "columns": columns,
    }


def render() -> str:
    document = {"version": 2, "models": [model_properties(table) for table in canonical.TABLES]}
    return HEADER + yaml.safe_dump(document, sort_keys=False, width=120, allow_unicode=True)


def write(path: Path = CANONICAL_YML) -> bool:
    """Write the file; True when it changed."""
    text = render()
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def main() -> None:
    changed = write()
    print(f"{CANONICAL_YML.relative_to(PROJECT_ROOT)} {'written' if changed else 'already current'}")


if __name__ == "__main__":
    main()
    sys.exit(0)
