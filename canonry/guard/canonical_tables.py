"""Canonical warehouse tables, their columns and sizes, for the SQL guard.

The contract itself lives in `canonry/canonical.py` (one source of truth); this module adapts it, and
`load_canonical_tables` / `load_table_sizes` prefer the live DuckDB `information_schema` when the warehouse
exists (the guard then sees the columns a build actually made, and the sizes its fan-out rules estimate from).
"""

from __future__ import annotations

from functools import lru_cache

from canonry.canonical import TABLES, columns

SCHEMA = "canonical"


def canonical_tables() -> dict[str, tuple[str, ...]]:
    """table name -> columns in contract order (id column first, standard columns last)."""
    return {table: columns(table) for table in TABLES}


def load_canonical_tables() -> dict[str, tuple[str, ...]]:
    """Canonical table -> columns, from ``information_schema`` when the DuckDB warehouse has them,
    otherwise from the embedded contract (:mod:`canonry.guard.canonical_tables`)."""
    from canonry.warehouse import postgres_url, warehouse_path

    path = warehouse_path()
    if postgres_url() is None and path.exists():
        live, _sizes = _warehouse_catalog(str(path), path.stat().st_mtime_ns)
        if live:
            return live
    return canonical_tables()


def load_table_sizes() -> dict[str, int]:
    """Canonical table -> row count as the warehouse estimates it ({} when there is none: the join fan-out
    and collecting-aggregate rules then have no estimate and stay silent)."""
    from canonry.warehouse import postgres_url, warehouse_path

    if postgres_url() is not None:
        return _postgres_sizes()
    path = warehouse_path()
    if path.exists():
        return _warehouse_catalog(str(path), path.stat().st_mtime_ns)[1]
    return {}


# PostgreSQL's estimates: the planner's `reltuples` (-1 until the table is first analysed) and the statistics
# collector's live-row count; a table neither has seen yet is counted (a fresh build, so a small cost once).
_PG_SIZES = """
    select c.relname, c.reltuples, coalesce(s.n_live_tup, 0)
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    left join pg_stat_user_tables s on s.relid = c.oid
    where n.nspname = %s and c.relkind in ('r', 'p')"""


def _postgres_sizes() -> dict[str, int]:
    from canonry.errors import CanonryError
    from canonry.warehouse import connect

    try:
        conn = connect()
    except CanonryError:  # unreachable: the rules stay silent, as without a warehouse
        return {}
    try:
        sizes = {}
        for table, planned, live in conn.execute(_PG_SIZES.replace("%s", "?"), [SCHEMA]).fetchall():
            estimate = max(int(planned), int(live))
            if estimate <= 0:
                estimate = conn.execute(f'select count(*) from {SCHEMA}."{table}"').fetchone()[0]
            sizes[table] = int(estimate)
        return sizes
    finally:
        conn.close()


def warehouse_dialect() -> str:
    """The guard dialect of the configured warehouse: ``postgres`` when a PostgreSQL URL is set."""
    from canonry.warehouse import postgres_url

    return "postgres" if postgres_url() else "duckdb"


@lru_cache(maxsize=4)
def _warehouse_catalog(path: str, mtime_ns: int) -> tuple[dict[str, tuple[str, ...]], dict[str, int]]:
    import duckdb

    try:
        conn = duckdb.connect(path, read_only=True)
    except duckdb.Error:  # locked by a writer, or not a DuckDB file: use the contract
        return {}, {}
    try:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = ? ORDER BY table_name, ordinal_position",
            [SCHEMA],
        ).fetchall()
        sizes = conn.execute(
            "SELECT table_name, estimated_size FROM duckdb_tables() WHERE schema_name = ?", [SCHEMA]
        ).fetchall()
    finally:
        conn.close()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return {t: tuple(c) for t, c in tables.items()}, {t: int(n or 0) for t, n in sizes}
