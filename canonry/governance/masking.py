"""`canonical_masked`: the canonical tables as analysts (and the SQL guard, by default) read them.

One view per canonical table, column for column, by the contract's classes (canonry/canonical.py):

| class | in the view |
|---|---|
| `public`, `internal` | as is (ids too: joins on `candidate_id`, `account_id`… work unchanged) |
| `pii` | a keyed hash: md5(key ‖ value), stable for joins (the same email hashes the same everywhere) |
| `sensitive_pii` | null |

The key is the masking key of the secret store (`local:canonry-masking-key`, created on first use), never
written into the warehouse on DuckDB: the views read it from a session variable (`getvariable`) that the
guarded query path sets on its own connection; a session without it sees null for every `pii` column. On
PostgreSQL the views call `canonry_private.pseudonym(text)`, a SECURITY DEFINER function reading the key
from `canonry_private.masking_key`, which only the warehouse owner can read; `grant_analyst(role)` creates
an analyst role with USAGE/SELECT on `canonical_masked` alone (no `canonical`, no `raw_*`, no `ops`).
"""

from __future__ import annotations

import secrets

from canonry import canonical

SCHEMA = "canonical_masked"
KEY_REFERENCE = "local:canonry-masking-key"
VARIABLE = "canonry_mask_key"
PRIVATE_SCHEMA = "canonry_private"
DEFAULT_ANALYST_ROLE = "canonry_analyst"
POLICIES = ("masked", "unmasked")


def masking_key() -> str:
    """The key of the keyed hash, from the secret store (a new random one the first time)."""
    from canonry.secrets import SecretNotFound, resolve_secret, store_secret

    try:
        return resolve_secret(KEY_REFERENCE)
    except SecretNotFound:
        key = secrets.token_hex(32)
        store_secret(KEY_REFERENCE, key)
        return key


def column_expression(table: str, column: str, dialect: str) -> str:
    doc = canonical.column_doc(table, column)
    kind = canonical.warehouse_type(doc.type, dialect)
    if doc.classification == "sensitive_pii":
        return f"cast(null as {kind}) as {column}"
    if doc.classification != "pii":
        return column
    value = f"cast({column} as {'varchar' if dialect == 'duckdb' else 'text'})"
    hashed = (f"md5(getvariable('{VARIABLE}') || {value})" if dialect == "duckdb"
              else f"{PRIVATE_SCHEMA}.pseudonym({value})")
    if doc.type == "json":  # a JSON column keeps its type: the hash as a JSON string
        return (f"to_json({hashed}) as {column}" if dialect == "duckdb" else f"to_jsonb({hashed}) as {column}")
    return f"{hashed} as {column}"


def view_sql(table: str, dialect: str) -> str:
    select = ",\n    ".join(column_expression(table, c, dialect) for c in canonical.columns(table))
    return f"create or replace view {SCHEMA}.{table} as select\n    {select}\nfrom canonical.{table}"


def refresh(conn=None) -> list[str]:
    """(Re)create the masked views of the canonical tables the warehouse has; the tables done."""
    from canonry.warehouse import connect

    own = conn is None
    conn = conn or connect(purpose="masked views")
    try:
        dialect = getattr(conn, "dialect", "duckdb")
        present = {r[0] for r in conn.execute("select table_name from information_schema.tables "
                                              "where table_schema = 'canonical'").fetchall()}
        tables = [t for t in canonical.TABLES if t in present]
        if not tables:
            return []
        conn.execute(f"create schema if not exists {SCHEMA}")
        if dialect == "postgres":
            _postgres_pseudonym(conn)
        for table in tables:
            if dialect == "postgres":  # PostgreSQL cannot replace a view whose column types changed
                conn.execute(f"drop view if exists {SCHEMA}.{table}")
            conn.execute(view_sql(table, dialect))
        return tables
    finally:
        if own:
            conn.close()


def _postgres_pseudonym(conn) -> None:
    conn.execute(f"create schema if not exists {PRIVATE_SCHEMA}")
    conn.execute(f"revoke all on schema {PRIVATE_SCHEMA} from public")
    conn.execute(f"create table if not exists {PRIVATE_SCHEMA}.masking_key (key text not null)")
    if conn.execute(f"select count(*) from {PRIVATE_SCHEMA}.masking_key").fetchone()[0] == 0:
        conn.execute(f"insert into {PRIVATE_SCHEMA}.masking_key values (?)", [masking_key()])
    conn.execute(f"""create or replace function {PRIVATE_SCHEMA}.pseudonym(value text) returns text
        language sql stable security definer set search_path = pg_catalog as
        $$ select md5(k.key || value) from {PRIVATE_SCHEMA}.masking_key k limit 1 $$""")


def grant_analyst(role: str = DEFAULT_ANALYST_ROLE, conn=None) -> None:
    """PostgreSQL: a role that can read `canonical_masked` and nothing else of the warehouse."""
    from canonry.errors import ConfigError
    from canonry.warehouse import connect

    if not role.replace("_", "").isalnum():
        raise ConfigError(f"role name {role!r}: letters, digits and _ only")
    own = conn is None
    conn = conn or connect(purpose="analyst role")
    try:
        if getattr(conn, "dialect", "duckdb") != "postgres":
            raise ConfigError("roles and grants exist on PostgreSQL only (DuckDB has no access control: "
                              "analysts reach the masked schema through the SQL guard)")
        refresh(conn)
        if not conn.execute("select 1 from pg_roles where rolname = ?", [role]).fetchone():
            conn.execute(f"create role {role} nologin")
        conn.execute(f"grant usage on schema {SCHEMA} to {role}")
        conn.execute(f"grant select on all tables in schema {SCHEMA} to {role}")
        conn.execute(f"grant usage on schema {PRIVATE_SCHEMA} to {role}")
        conn.execute(f"grant execute on function {PRIVATE_SCHEMA}.pseudonym(text) to {role}")
        for schema in [r[0] for r in conn.execute(
                "select schema_name from information_schema.schemata where schema_name not in "
                "('information_schema', 'pg_catalog', 'pg_toast', ?, ?) and schema_name not like 'pg_%'",
                [SCHEMA, PRIVATE_SCHEMA]).fetchall()]:
            conn.execute(f'revoke all on all tables in schema "{schema}" from {role}')
            conn.execute(f'revoke all on schema "{schema}" from {role}')
    finally:
        if own:
            conn.close()


def policy(explicit: str | None = None) -> str:
    """The guarded query path's policy: `masked` (default) or `unmasked` (`--unmasked`,
    `CANONRY_QUERY_POLICY=unmasked`)."""
    import os

    from canonry.errors import ConfigError

    chosen = explicit or os.environ.get("CANONRY_QUERY_POLICY") or "masked"
    if chosen not in POLICIES:
        raise ConfigError(f"query policy {chosen!r} is not one of {', '.join(POLICIES)}",
                          hint="CANONRY_QUERY_POLICY=masked (default) or unmasked")
    return chosen


def views_exist() -> bool:
    from canonry.guard.run import open_sandboxed

    conn = open_sandboxed()
    try:
        return bool(conn.execute("select count(*) from information_schema.tables where table_schema = ?",
                                 [SCHEMA]).fetchone()[0])
    finally:
        conn.close()


def to_masked(query: str, dialect: str) -> str:
    """The guarded query with every `canonical.<table>` read from `canonical_masked.<table>` instead."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(query, read=dialect)
    for table in tree.find_all(exp.Table):
        if table.text("db").lower() == "canonical":
            table.set("db", exp.to_identifier(SCHEMA))
    return tree.sql(dialect=dialect)
