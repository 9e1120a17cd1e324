"""Tenant isolation on a PostgreSQL warehouse: a schema per tenant, `canonical_<tenant>`, readable by that
tenant's role only.

Every canonical row carries `tenant_id` (the connection's `tenant`). `canonry tenant grant TENANT --role R`
records the grant in `ops.tenant_grants` and creates, for every canonical table, a view
`canonical_<tenant>.<table>` = the table's rows of that tenant, with `security_barrier` (no function of
the reader's is evaluated before the tenant filter), and grants the role USAGE on that schema and SELECT on
its views — nothing else: the role has no privilege on `canonical`, the raw or staging schemas, or another
tenant's schema, so reading another tenant's rows is a "permission denied", not an empty answer.

Why views in a schema per tenant, not row-level security on the canonical tables: a tenant's role then
works from any client with no session setting to trust (a policy keyed on a setting the reader may change
isolates nothing), and the canonical tables dbt rebuilds carry no policy that a rebuild could lose.
A dbt table rebuild drops the views that depend on the old table (`drop … cascade`), so the project's
`on-run-end` hook (dbt/macros/tenants.sql) calls `ops.refresh_tenant_views()`, defined here, after every
build — the CLI's and Dagster's alike. During a build a tenant may briefly find a view missing.

On DuckDB (one file, no roles) a grant is a config_error: isolate tenants there with a warehouse each.
"""

from __future__ import annotations

import re

from canonry.errors import ConfigError

SCHEMA_PREFIX = "canonical_"
_TENANT_NAME = re.compile(r"^[a-z0-9_]{1,40}$")

GRANTS_DDL = """create table if not exists ops.tenant_grants (
    tenant_id text primary key, schema_name text not null, role_name text not null,
    granted_at timestamptz not null default now())"""

# One definition serves `canonry tenant grant` and dbt's on-run-end hook.
REFRESH_FUNCTION = """
create or replace function ops.refresh_tenant_views() returns integer language plpgsql as $fn$
declare
    g record;
    t record;
    n integer := 0;
begin
    for g in select tenant_id, schema_name, role_name from ops.tenant_grants order by tenant_id loop
        execute format('create schema if not exists %I', g.schema_name);
        execute format('revoke all on schema %I from public', g.schema_name);
        execute format('grant usage on schema %I to %I', g.schema_name, g.role_name);
        for t in select table_name from information_schema.tables
                 where table_schema = 'canonical' and table_type = 'BASE TABLE' order by table_name loop
            execute format('drop view if exists %I.%I', g.schema_name, t.table_name);
            execute format('create view %I.%I with (security_barrier) as select * from canonical.%I '
                           'where tenant_id = %L', g.schema_name, t.table_name, t.table_name, g.tenant_id);
            execute format('grant select on %I.%I to %I', g.schema_name, t.table_name, g.role_name);
            n := n + 1;
        end loop;
    end loop;
    return n;
end
$fn$
"""


def tenant_schema(tenant: str) -> str:
    """`canonical_<tenant>`; a tenant id that is not a plain lower-case name is a config_error."""
    name = tenant.replace("-", "_")
    if not _TENANT_NAME.match(name):
        raise ConfigError(f"tenant {tenant!r} cannot name a schema",
                          hint="tenant ids for schema-per-tenant isolation use a-z, 0-9, - and _ (up to 40)")
    return SCHEMA_PREFIX + name


def _postgres():
    from canonry.warehouse import connect, postgres_url

    if not postgres_url():
        raise ConfigError("tenant schemas need a PostgreSQL warehouse (CANONRY_WAREHOUSE=postgresql://…): the "
                          "DuckDB file has no roles to isolate tenants with",
                          hint="give each tenant a warehouse file of its own, or use PostgreSQL")
    return connect()


def _install(conn) -> None:
    from canonry import ops

    ops.ensure_tables(conn)
    conn.execute(GRANTS_DDL)
    conn.execute(REFRESH_FUNCTION)


def grant(tenant: str, role: str) -> int:
    """Give `role` its tenant's schema of views (created now for the canonical tables that exist, and after
    every dbt build). Returns the number of views now in place across tenants."""
    schema = tenant_schema(tenant)
    conn = _postgres()
    try:
        if not conn.execute("select 1 from pg_roles where rolname = ?", [role]).fetchall():
            raise ConfigError(f"role {role!r} does not exist in the PostgreSQL warehouse",
                              hint=f'create it first (e.g. CREATE ROLE "{role}" LOGIN PASSWORD …), then grant')
        _install(conn)
        conn.execute("insert into ops.tenant_grants (tenant_id, schema_name, role_name) values (?, ?, ?) "
                      "on conflict (tenant_id) do update set role_name = excluded.role_name, granted_at = now()",
                      [tenant, schema, role])
        return conn.execute("select ops.refresh_tenant_views()").fetchone()[0]
    finally:
        conn.close()


def revoke(tenant: str) -> None:
    """Drop the tenant's schema of views and its grant (its role stays: it may serve other purposes)."""
    schema = tenant_schema(tenant)
    conn = _postgres()
    try:
        _install(conn)
        conn.execute(f'drop schema if exists "{schema}" cascade')
        conn.execute("delete from ops.tenant_grants where tenant_id = ?", [tenant])
    finally:
        conn.close()


def grants() -> list[dict]:
    conn = _postgres()
    try:
        _install(conn)
        rows = conn.execute("select tenant_id, schema_name, role_name, granted_at from ops.tenant_grants "
                            "order by tenant_id").fetchall()
    finally:
        conn.close()
    return [dict(zip(("tenant", "schema", "role", "granted_at"), row, strict=True)) for row in rows]


# `canonry tenant grant | revoke | list` (registered in canonry/cli.py).
def _cli_app():
    import typer

    from canonry.cli_output import _fail, console
    from canonry.errors import CanonryError

    app = typer.Typer(help="Tenant schemas on a PostgreSQL warehouse: canonical_<tenant>, read by one role.",
                      no_args_is_help=True)

    @app.command("grant")
    def grant_command(tenant: str = typer.Argument(..., help="the tenant (a connection's `tenant`)"),
                      role: str = typer.Option(..., "--role", help="an existing PostgreSQL role: it may read "
                                               "canonical_<tenant> and nothing else of the warehouse")) -> None:
        """Give a role its tenant's canonical_<tenant> schema (views kept after every dbt build)."""
        try:
            views = grant(tenant, role)
        except CanonryError as exc:
            _fail(str(exc))
        console.print(f"{role} reads {tenant_schema(tenant)} ({views} tenant views in place)")

    @app.command("revoke")
    def revoke_command(tenant: str = typer.Argument(...)) -> None:
        """Drop a tenant's schema of views and its grant."""
        try:
            revoke(tenant)
        except CanonryError as exc:
            _fail(str(exc))
        console.print(f"dropped {tenant_schema(tenant)}")

    @app.command("list")
    def list_command() -> None:
        """The tenants with a schema, and their roles."""
        try:
            for row in grants():
                console.print(f"{row['tenant']}: {row['schema']} read by {row['role']}")
        except CanonryError as exc:
            _fail(str(exc))

    return app


tenant_app = _cli_app()
