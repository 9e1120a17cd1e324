"""`canonry soql ...` and `canonry sql ...`: check, ask (guarded AI), and run.

`soql run --connection <id>` runs a guarded query against a Salesforce connection; `soql check|ask
--connection <id>` check against that org's own catalog (its describe endpoints, cached under the data
dir: `canonry/soql.py`). Without `--connection` the SOQL commands use `--catalog`, `$CANONRY_SF_CATALOG` or
the shipped catalog, and make no API call.

Exit codes: 0 the query passes (allow / rewrite) or ran; 1 rejected, or the AI loop gave up, or the
query failed/timed out, or the provider refused; 2 configuration problem (no AI endpoint, no warehouse,
unknown or invalid connection); 3 the AI endpoint failed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from canonry.guard import audit
from canonry.guard.verdict import Verdict

soql_app = typer.Typer(help="Check Salesforce SOQL against the guard, or have AI write guarded SOQL.",
                       no_args_is_help=True)
sql_app = typer.Typer(help="Check, run or AI-write guarded SQL over the canonical warehouse tables.",
                      no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")]
CatalogOpt = Annotated[
    Path | None,
    typer.Option("--catalog", help="Catalog cache JSON (default: $CANONRY_SF_CATALOG or the shipped catalog)."),
]
ConnectionOpt = Annotated[
    str | None,
    typer.Option("--connection", "-c", help="A Salesforce connection id: check against its org's catalog "
                                              "(fetched from its describe endpoints, cached under the data dir)."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Connections file (default: $CANONRY_CONFIG or data/connections.yml)."),
]
RefreshCatalogOpt = Annotated[
    bool, typer.Option("--refresh-catalog", help="Fetch the connection's catalog again instead of the cached one."),
]
DialectOpt = Annotated[str, typer.Option("--dialect", help="duckdb or postgres.")]
RepairsOpt = Annotated[int, typer.Option("--max-repairs", min=0, help="Repairs after the first answer.")]


def _emit_verdict(verdict: Verdict, as_json: bool) -> None:
    typer.echo(verdict.to_json() if as_json else verdict.to_text())


def _audit(records: list[audit.AuditRecord]) -> None:
    audit.write(records)


def _timed(fn, *args, **kwargs) -> tuple[Verdict, float]:
    started = time.perf_counter()
    verdict = fn(*args, **kwargs)
    return verdict, (time.perf_counter() - started) * 1000


# ---------------------------------------------------------------------------------------------------
# SOQL
# ---------------------------------------------------------------------------------------------------


def _connection(config: Path | None, connection_id: str):
    """The connection from the connections file, or exit 2 with the problem."""
    from canonry.errors import CanonryError

    try:
        from canonry.validation import load_connections

        connection = load_connections(config, builds_canonical=False).get(connection_id)  # reads the API only
    except CanonryError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if connection.provider != "salesforce":
        typer.echo(f"error: connection {connection_id!r} is a {connection.provider} connection; SOQL runs "
                   "against Salesforce connections only", err=True)
        raise typer.Exit(2)
    return connection


def _soql_guard(catalog_path: Path | None, connection=None, refresh: bool = False,
                refuse_nonselective: bool = False):
    from canonry.guard.catalog import load_catalog
    from canonry.guard.rules_soql import SoqlPolicy, check_soql

    if connection is not None and catalog_path is None:
        from canonry.errors import CanonryError
        from canonry.soql import connection_catalog

        try:
            catalog = connection_catalog(connection, refresh=refresh)
        except CanonryError as error:
            typer.echo(f"error: cannot read the catalog of {connection.id}: {error}", err=True)
            raise typer.Exit(2 if error.error_class.value == "config_error" else 1) from None
    else:
        catalog = load_catalog(catalog_path)
    policy = SoqlPolicy(refuse_nonselective=refuse_nonselective)
    return catalog, lambda query: check_soql(query, catalog, policy)


@soql_app.command("check")
def soql_check(
    query: Annotated[str, typer.Argument(help="The SOQL query.")],
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    connection: ConnectionOpt = None,
    config: ConfigOpt = None,
    refresh_catalog: RefreshCatalogOpt = False,
) -> None:
    """Check one SOQL query: allow, rewrite (prints the rewritten query) or reject (exit 1)."""
    conn = _connection(config, connection) if connection else None
    _, guard = _soql_guard(catalog, conn, refresh_catalog)
    verdict, ms = _timed(guard, query)
    _audit([audit.record("soql", "check", query, verdict, ms)])
    _emit_verdict(verdict, as_json)
    raise typer.Exit(0 if verdict.passed else 1)


@soql_app.command("run")
def soql_run(
    query: Annotated[str, typer.Argument(help="The SOQL query.")],
    connection: Annotated[str, typer.Option("--connection", "-c", help="The Salesforce connection id to run it "
                                                                        "against.")],
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict, the query run and the rows as "
                                                         "JSON.")] = False,
    catalog: Annotated[Path | None, typer.Option("--catalog", help="Check against this catalog file instead "
                                                                   "of the connection's org catalog.")] = None,
    refresh_catalog: RefreshCatalogOpt = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=200, max=2000,
                                            help="Records per query batch (Sforce-Query-Options).")] = 2000,
    allow_nonselective: Annotated[bool, typer.Option(
        "--allow-nonselective",
        help="Run a query whose filter cannot use an index (leading-wildcard LIKE, only negations, no "
             "selective filter on a large object) with a warning instead of refusing it.")] = False,
) -> None:
    """Run a SOQL query against a Salesforce connection, only if the guard passes it (a rewritten query
    runs rewritten; a rejected one never reaches Salesforce). A non-selective query is refused unless
    --allow-nonselective. Prints the rows as a table, or JSON."""
    from canonry.errors import CanonryError
    from canonry.guard.rules_soql import only_nonselective
    from canonry.soql import render_table, run_soql

    conn = _connection(config, connection)
    _, guard = _soql_guard(catalog, conn, refresh_catalog, refuse_nonselective=not allow_nonselective)
    verdict, ms = _timed(guard, query)
    _audit([audit.record("soql", "run", query, verdict, ms)])
    if not verdict.passed:
        if not as_json and only_nonselective(verdict):
            typer.echo("refused: the query is not selective (its filter cannot use an index, so Salesforce "
                       "would scan every record); nothing was sent to Salesforce. Add a selective filter, or "
                       "pass --allow-nonselective to run it anyway", err=True)
        elif not as_json:
            typer.echo("refused: the guard rejected the query; nothing was sent to Salesforce", err=True)
        _emit_verdict(verdict, as_json)
        raise typer.Exit(1)
    final = verdict.final_query or query
    if verdict.rewritten and not as_json:
        typer.echo(f"guard rewrote the query: {verdict.rewritten}", err=True)
    for warning in (v for v in verdict.violations if v.severity == "warning" and not as_json):
        typer.echo(f"warning: {warning.code}: {warning.message}", err=True)
    try:
        result = run_soql(conn, final, batch_size=batch_size)
    except CanonryError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2 if error.error_class.value == "config_error" else 1) from None
    if as_json:
        typer.echo(json.dumps({"verdict": verdict.to_dict(), "connection": conn.id, "query": final,
                               "columns": result.columns, "rows": result.rows, "total_size": result.total_size,
                               "calls": result.calls}, default=str))
    else:
        typer.echo(render_table(result.columns, result.rows))
        typer.echo(f"({len(result.rows)} rows, {result.calls} API calls, {result.elapsed_ms:.0f} ms)", err=True)


@soql_app.command("ask")
def soql_ask(
    question: Annotated[str, typer.Argument(help="What you want to know, in plain words.")],
    max_repairs: RepairsOpt = 3,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    connection: ConnectionOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Have the configured AI endpoint write SOQL; only a query that passes the guard is printed."""
    from canonry.guard.ai import soql_schema_text

    conn = _connection(config, connection) if connection else None
    sf_catalog, guard = _soql_guard(catalog, conn, refuse_nonselective=True)
    _ask("soql", question, guard, soql_schema_text(sf_catalog), max_repairs, as_json)


# ---------------------------------------------------------------------------------------------------
# SQL
# ---------------------------------------------------------------------------------------------------


def _sql_guard(dialect: str):
    from canonry.guard.canonical_tables import load_canonical_tables, load_table_sizes
    from canonry.guard.rules_sql import DIALECTS, check_sql

    if dialect not in DIALECTS:
        typer.echo(f"--dialect must be one of: {', '.join(DIALECTS)}", err=True)
        raise typer.Exit(2)
    tables, sizes = load_canonical_tables(), load_table_sizes()
    return tables, lambda query: check_sql(query, dialect, tables, sizes=sizes)


@sql_app.command("check")
def sql_check(
    query: Annotated[str, typer.Argument(help="The SQL query.")],
    as_json: JsonOpt = False,
    dialect: DialectOpt = "duckdb",
) -> None:
    """Check one warehouse query: allow, rewrite (prints the rewritten query) or reject (exit 1)."""
    _, guard = _sql_guard(dialect)
    verdict, ms = _timed(guard, query)
    _audit([audit.record("sql", "check", query, verdict, ms)])
    _emit_verdict(verdict, as_json)
    raise typer.Exit(0 if verdict.passed else 1)


@sql_app.command("run")
def sql_run(
    query: Annotated[str, typer.Argument(help="The SQL query (in the warehouse's dialect).")],
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Statement timeout in seconds.")] = 30.0,
    memory_limit: Annotated[str, typer.Option("--memory-limit", help="DuckDB memory limit (e.g. 512MB, 2GB).")] = "1GB",
    threads: Annotated[int, typer.Option("--threads", min=1, help="DuckDB worker threads.")] = 2,
    max_rows: Annotated[int, typer.Option("--max-rows", min=1, help="Refuse results with more rows.")] = 10_000,
    max_bytes: Annotated[str, typer.Option("--max-bytes", help="Refuse results larger than this (e.g. 64MB).")] = "64MB",
    as_json: JsonOpt = False,
    unmasked: Annotated[bool, typer.Option("--unmasked", help="Read canonical itself, not canonical_masked "
                                           "(policy switch; also CANONRY_QUERY_POLICY=unmasked).")] = False,
) -> None:
    """Run a query on the warehouse, only if the guard passes it (rewritten queries run rewritten), within
    time, memory, thread and result-size limits (each hit is exit 1 with the limit named). By default it reads
    the masked views (canonical_masked: pii pseudonymised, sensitive_pii null; docs/GOVERNANCE.md)."""
    from canonry.guard.canonical_tables import warehouse_dialect
    from canonry.guard.run import (
        ExecutionLimits,
        QueryFailed,
        QueryLimitExceeded,
        WarehouseUnavailable,
        parse_size,
        run_query,
    )
    from canonry.warehouse import postgres_url, warehouse_path

    try:
        limits = ExecutionLimits(timeout, memory_limit, threads, max_rows, parse_size(max_bytes))
    except ValueError as error:
        typer.echo(f"error: invalid limit: {error}", err=True)
        raise typer.Exit(2) from None
    if postgres_url() is None and not warehouse_path().exists():  # before the audit creates the file
        typer.echo(f"error: no warehouse at {warehouse_path()}; load data first (e.g. `canonry demo`)", err=True)
        raise typer.Exit(2)
    _, guard = _sql_guard(warehouse_dialect())
    verdict, ms = _timed(guard, query)
    _audit([audit.record("sql", "run", query, verdict, ms)])
    if not verdict.passed:
        _emit_verdict(verdict, as_json)
        raise typer.Exit(1)
    final = verdict.final_query or query
    if verdict.rewritten and not as_json:
        typer.echo(f"guard rewrote the query: {verdict.rewritten}", err=True)
    try:
        final = _apply_policy(final, "unmasked" if unmasked else None)
        result = run_query(final, limits=limits)
    except WarehouseUnavailable as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    except (QueryLimitExceeded, QueryFailed) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps({"verdict": verdict.to_dict(), "query": final, "columns": result.columns,
                               "rows": [list(r) for r in result.rows]}, default=str))
    else:
        typer.echo("\t".join(result.columns))
        for row in result.rows:
            typer.echo("\t".join("" if v is None else str(v) for v in row))
        typer.echo(f"({len(result.rows)} rows, {result.elapsed_ms:.1f} ms)", err=True)


def _apply_policy(query: str, explicit: str | None) -> str:
    """The query as the policy lets it run: on canonical_masked (default) or canonical (`unmasked`)."""
    from canonry.errors import CanonryError
    from canonry.governance import masking
    from canonry.guard.canonical_tables import warehouse_dialect
    from canonry.guard.run import SESSION_VARIABLES, WarehouseUnavailable

    try:
        if masking.policy(explicit) == "unmasked":
            return query
        if not masking.views_exist():
            masking.refresh()  # a warehouse built by dbt alone (not `canonry`): the views are made here
        SESSION_VARIABLES[masking.VARIABLE] = masking.masking_key()
    except CanonryError as error:
        raise WarehouseUnavailable(str(error)) from None
    return masking.to_masked(query, warehouse_dialect())


@sql_app.command("ask")
def sql_ask(
    question: Annotated[str, typer.Argument(help="What you want to know, in plain words.")],
    max_repairs: RepairsOpt = 3,
    as_json: JsonOpt = False,
    dialect: DialectOpt = "duckdb",
) -> None:
    """Have the configured AI endpoint write warehouse SQL; only a query that passes is printed."""
    from canonry.guard.ai import sql_schema_text

    tables, guard = _sql_guard(dialect)
    _ask("sql", question, guard, sql_schema_text(tables), max_repairs, as_json,
         dialect={"duckdb": "DuckDB", "postgres": "PostgreSQL"}[dialect])


# ---------------------------------------------------------------------------------------------------
# The shared ask flow
# ---------------------------------------------------------------------------------------------------


def _ask(kind: str, question: str, guard, schema_text: str, max_repairs: int, as_json: bool,
         **prompt_params: str) -> None:
    from canonry.guard.ai import ChatClient, LlmConfig, LlmError, LlmNotConfigured, ask

    try:
        config = LlmConfig.from_env()
    except LlmNotConfigured as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    client = ChatClient(config)
    try:
        result = ask(question, kind, guard, client.complete, schema_text, max_repairs, **prompt_params)
    except LlmError as error:
        typer.echo(f"error: the AI endpoint failed: {error}", err=True)
        raise typer.Exit(3) from None
    _audit([
        audit.AuditRecord(kind, "ask", question, a.query, a.verdict.verdict, a.verdict.codes,
                          a.elapsed_ms, attempt=i)
        for i, a in enumerate(result.attempts)
    ])
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
    elif result.ok:
        typer.echo(result.query)
        if result.verdict and result.verdict.violations:
            typer.echo(result.verdict.to_text(), err=True)
    else:
        typer.echo(f"error: no query passed the guard after {len(result.attempts)} attempt(s) "
                   f"({max_repairs} repairs). Last verdict:", err=True)
        if result.verdict:
            typer.echo(result.verdict.to_text(), err=True)
    raise typer.Exit(0 if result.ok else 1)
