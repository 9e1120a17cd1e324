"""Canonical warehouse tables and their columns, for the SQL guard.

The contract itself lives in `canonry/canonical.py` (one source of truth); this module only adapts it.
`rules_sql.load_canonical_tables` prefers the live `information_schema` when the warehouse exists.
"""

from __future__ import annotations

from canonry.canonical import TABLES, columns

SCHEMA = "canonical"


def canonical_tables() -> dict[str, tuple[str, ...]]:
    """table name -> columns in contract order (id column first, standard columns last)."""
    return {table: columns(table) for table in TABLES}
