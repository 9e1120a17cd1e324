"""The `canonry` command: demo, sync, push, validate, connect, disconnect, secret, status, replay, trace,
sandbox serve, ui.

Everything printed passes the redaction filter (`canonry.secrets.redact`): no token reaches the terminal.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

import canonry  # noqa: F401  (switches telemetry off before anything else is imported)
from canonry.errors import CanonryError
from canonry.guard.cli import soql_app, sql_app

app = typer.Typer(help="Canonry: ATS and CRM provider APIs -> canonical warehouse tables.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
sandbox_app = typer.Typer(help="Local provider sandboxes (faithful simulators).", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(soql_app, name="soql")
app.add_typer(sql_app, name="sql")
secret_app = typer.Typer(help="The local encrypted secret store (local:NAME references).", no_args_is_help=True)
app.add_typer(secret_app, name="secret")


class _RedactingConsole(Console):
    """A rich console whose every printed string passes the redaction filter."""

    def print(self, *objects, **kwargs) -> None:  # noqa: A003
        from canonry.secrets import redact

        super().print(*(redact(o) if isinstance(o, str) else o for o in objects), **kwargs)


console = _RedactingConsole()
err_console = _RedactingConsole(stderr=True)


@app.callback()
def _main() -> None:
    """Canonry: ATS and CRM provider APIs -> canonical warehouse tables."""
    from canonry.secrets import install_redaction

    install_redaction()


def _fail(message: str, code: int = 1) -> None:
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(str(message))}", soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def demo(scale: int = typer.Option(200, help="records per object in each sandbox"),
         seed: int = typer.Option(7, help="sandbox data seed"),
         activity: int = typer.Option(5, help="record changes simulated before a repeat run")) -> None:
    """Run the main job on the embedded default: sandboxes -> DuckDB -> canonical tables -> validation."""
    from canonry.demo import run_demo
    from canonry.warehouse import warehouse_path

    started = time.perf_counter()
    try:
        report = run_demo(scale=scale, seed=seed, activity=activity, progress=lambda m: console.print(m))
    except (CanonryError, RuntimeError) as exc:
        _fail(str(exc))
    total = time.perf_counter() - started

    syncs = Table(title="Syncs")
    for column in ("connection", "status", "records loaded", "API calls", "retries", "seconds"):
        syncs.add_column(column, justify="right" if column not in ("connection", "status") else "left")
    for result in report.syncs:
        syncs.add_row(result.connection_id, result.status, str(sum(result.records.values())), str(result.calls),
                      str(result.retries), f"{result.duration_s:.1f}")
    console.print(syncs)

    tables = Table(title="Canonical tables (rows, excluding deleted)")
    tables.add_column("table")
    tables.add_column("rows", justify="right")
    tables.add_column("validation")
    gate_by_table = report.gate.tables()
    for table, rows in report.rows.items():
        tables.add_row(f"canonical.{table}", str(rows), "passed" if gate_by_table.get(table) else "FAILED")
    console.print(tables)

    calls = sum(r.calls for r in report.syncs)
    phases = ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
    console.print(f"API calls: {calls} · time: {total:.1f}s ({phases})")
    console.print(f"dbt build: {'passed' if report.dbt.success else 'FAILED'} "
                  f"({len(report.dbt.nodes)} nodes, {len(report.dbt.warnings())} warnings)")
    console.print(f"Warehouse: {warehouse_path()}", soft_wrap=True)
    console.print(f"Query it:  duckdb {warehouse_path()} \"select * from canonical.crm_contacts limit 5\"",
                  soft_wrap=True)
    failed = [r for r in report.syncs if r.status != "success"]
    if failed or not report.dbt.success or not report.gate.success:
        for node in report.dbt.failures():
            err_console.print(f"dbt {node.resource_type} {node.name}: {node.status} {node.message or ''}")
        for check in report.gate.failed():
            err_console.print(f"validation failed: {check.table} {check.expectation}({check.column}) "
                              f"observed {check.observed}")
        raise typer.Exit(1)


@app.command()
def sync(config: Path | None = typer.Option(None, "--config", help="connections file (default: CANONRY_CONFIG "
                                                                    "or data/connections.yml)"),
         connection: list[str] = typer.Option(None, "--connection", "-c", help="only these connection ids"),
         full_refresh: bool = typer.Option(False, help="ignore cursors and read everything again"),
         transform: bool = typer.Option(True, help="run dbt and the validation gate after loading")) -> None:
    """Sync connections into the raw layer, then build and validate the canonical tables."""
    from canonry.config import load_connections
    from canonry.pipeline import sync as sync_connection

    try:
        model = load_connections(config)
    except CanonryError as exc:
        _fail(f"refusing to sync: {exc}")
    selected = [c for c in model.connections if not connection or c.id in connection]
    unknown = set(connection or []) - {c.id for c in model.connections}
    if unknown:
        _fail(f"unknown connection id(s): {', '.join(sorted(unknown))}")
    failures = 0
    for conn in selected:
        with console.status(f"syncing {conn.id} …"):
            result = sync_connection(conn, full_refresh=full_refresh)
        if result.error:
            failures += 1
            stalled = ", stalled: same failure as the last run, no progress" if result.stalled else ""
            err_console.print(f"{conn.id}: {result.error} [{result.status}, {result.checkpoints} checkpoint(s) "
                              f"committed{stalled}]", markup=False, soft_wrap=True)
        else:
            console.print(f"{conn.id}: {sum(result.records.values())} records, {result.calls} API calls, "
                          f"{result.duration_s:.1f}s")
    if transform:
        from canonry.transform import build_for
        from expectations.gate import run_gate, tables_for_connections

        synced = sorted({c.provider for c in selected})
        with console.status(f"dbt build ({', '.join(synced)} lineage) …"):
            dbt_result = build_for(synced)
        console.print(f"dbt build: {'passed' if dbt_result.success else 'FAILED'}")
        for node in dbt_result.failures():
            err_console.print(f"dbt {node.name}: {node.status} {node.message or ''}")
        with console.status("validation gate …"):
            gate = run_gate(tables_for_connections(selected))
        console.print(f"validation: {'passed' if gate.success else 'FAILED'} ({len(gate.checks)} expectations)")
        for check in gate.failed():
            err_console.print(f"validation failed: {check.table} {check.expectation}({check.column})")
        failures += (not dbt_result.success) + (not gate.success)
    raise typer.Exit(1 if failures else 0)


@app.command()
def push(name: str = typer.Argument(..., help="a sync (reverse_etl/<name>.yml) or a reverse-ETL dbt model, "
                                              "e.g. rev_hubspot__contacts"),
         config: Path | None = typer.Option(None, "--config", help="connections file (default: CANONRY_CONFIG "
                                                                     "or data/connections.yml)"),
         dry_run: bool = typer.Option(False, "--dry-run", help="print what would be written (creates, updates, "
                                      "deletes, unchanged, and per sample record the fields before -> after, "
                                      "from the model as last built); write nothing anywhere"),
         batch_size: int | None = typer.Option(None, help="records per batch (at most the provider's limit)"),
         sample: int = typer.Option(5, help="records shown by --dry-run"),
         limit: int | None = typer.Option(None, "--limit", min=1, help="canary: push at most N changes, "
                                          "then stop (the rest stay for the next run)"),
         only_ids: str | None = typer.Option(None, "--only-ids", help="comma-separated record keys or CRM ids: "
                                             "push only these"),
         retry_parked: bool = typer.Option(False, "--retry-parked", help="release the records parked after "
                                           "repeated rejections (ops.push_quarantine) and push them again"),
         as_json: bool = typer.Option(False, "--json", help="machine-readable result")) -> None:
    """Push a sync's changes into its CRM connections, gated by dbt tests and GE suites.

    A real run builds the model and its upstream (dbt tests included), runs the GE suites of the canonical
    tables it reads, and pushes only when every one passed in that build. Only changed fields are sent.
    """
    from canonry import reverse_etl
    from canonry.config import load_connections

    try:
        connections = load_connections(config)
        sync = reverse_etl.sync_for(name)
        info = reverse_etl.model_info(sync.model)
    except CanonryError as exc:
        _fail(f"refusing to push: {exc}")
    verdict = None
    if not dry_run:
        with console.status(f"building {sync.model} and validating the canonical tables it reads …"):
            verdict = reverse_etl.gate(sync.model,
                                       providers=sorted({c.provider for c in connections.connections}))
        if not verdict.passed:
            err_console.print(f"[bold red]push blocked:[/] {sync.model} reads "
                              f"{', '.join(info.canonical_parents)}; the validation gate failed:")
            for check in verdict.failed_checks:
                err_console.print(f"  failed check: {check}", markup=False, soft_wrap=True)
            err_console.print("nothing was written; fix the data or the checks, then push again")
            raise typer.Exit(1)
        if not as_json:
            console.print(verdict.describe(), markup=False)
    ids = {i.strip() for i in only_ids.split(",") if i.strip()} if only_ids else None
    try:
        result = reverse_etl.push(name, verdict, connections=connections, dry_run=dry_run,
                                  batch_size=batch_size, sample_size=sample, limit=limit, only_ids=ids,
                                  retry_parked=retry_parked,
                                  progress=None if as_json else lambda line: console.print(line, markup=False))
    except CanonryError as exc:
        _fail(f"refusing to push: {exc}")
    if as_json:
        print(json.dumps(result.as_dict(), default=str))
        raise typer.Exit(0 if result.success else 1)
    _print_push(result)
    raise typer.Exit(0 if result.success else 1)


def _print_push(result) -> None:
    if result.dry_run:
        for c in result.connections:
            console.print(f"{c.connection_id}: would insert {c.inserts}, update {c.updates}, delete {c.deletes} "
                          f"(unchanged {c.unchanged}, skipped by the mode {c.skipped}, parked {c.parked}, "
                          f"data errors {len(c.data_errors)}, held back by --limit {c.held_back}; "
                          "dry run: nothing written)", markup=False)
        for row in result.sample:
            changes = ", ".join(f"{k}: {v['before']!r} -> {v['after']!r}" for k, v in row["changes"].items())
            console.print(f"  {row['operation']} {row['record_key']} ({row['external_id'] or 'new'}): "
                          f"{changes or 'remove'}", markup=False, soft_wrap=True)
    else:
        table = Table(title=f"push {result.sync}")
        for column in ("connection", "status", "inserts", "updates", "deletes", "unchanged", "written",
                       "rejected", "parked", "verified", "API calls"):
            table.add_column(column)
        for c in result.connections:
            table.add_row(c.connection_id, c.status, *(str(getattr(c, k)) for k in (
                "inserts", "updates", "deletes", "unchanged", "written", "rejected", "newly_parked", "verified",
                "calls")))
        console.print(table)
    for c in result.connections:
        for problem in c.data_errors[:20]:
            err_console.print(f"{c.connection_id}: data_error {problem['record_key']}: {problem['message']}",
                              markup=False, soft_wrap=True)
        for rejection in c.rejections[:20]:
            err_console.print(f"{c.connection_id}: rejected {rejection['external_id'] or rejection['record_key']}: "
                              f"{rejection['message']}", markup=False, soft_wrap=True)
        if c.error:
            err_console.print(f"{c.connection_id}: {c.error}", markup=False, soft_wrap=True)


@app.command()
def validate(config: Path | None = typer.Option(None, "--config", help="connections file (default: CANONRY_CONFIG "
                                                                       "or data/connections.yml)"),
             as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
             schema: bool = typer.Option(False, "--schema", help="print the JSON Schema of the file"),
             sync_schema: bool = typer.Option(False, "--sync-schema", help="print the JSON Schema of a sync "
                                              "(reverse_etl/<name>.yml)")) -> None:
    """Check the connections file and the reverse-ETL syncs (reverse_etl/*.yml, or CANONRY_SYNCS_DIR); report
    every problem with file, line, value and hint. Exit 1 if any."""
    from canonry.config import config_path, json_schema
    from canonry.secrets import redact
    from canonry.validation import validate_file

    if schema:
        print(json.dumps(json_schema(), indent=2))
        return
    if sync_schema:
        from canonry.reverse_etl.syncs import json_schema as sync_json_schema

        print(json.dumps(sync_json_schema(), indent=2))
        return
    path = config_path(config)
    connections, problems = validate_file(path)
    from canonry.reverse_etl.syncs import validate_syncs

    problems += validate_syncs(connections)
    if as_json:
        print(redact(json.dumps({"file": str(path), "valid": not problems,
                                 "problems": [p.as_dict() for p in problems]}, default=str)))
    elif problems:
        for problem in problems:
            err_console.print(problem.render(), markup=False, highlight=False, soft_wrap=True)
        err_console.print(f"{len(problems)} problem(s) in {path}", markup=False)
    else:
        console.print(f"{path}: valid", markup=False)
    raise typer.Exit(1 if problems else 0)


def _load_one(config: Path | None, connection_id: str, require_tokens: bool = False):
    from canonry.config import load_connections

    try:
        return load_connections(config, require_tokens=require_tokens).get(connection_id)
    except CanonryError as exc:
        _fail(str(exc))


@app.command()
def connect(connection_id: str = typer.Argument(..., help="the connection to authorise"),
            config: Path | None = typer.Option(None, "--config"),
            timeout: int = typer.Option(300, help="seconds to wait for the browser to come back"),
            no_browser: bool = typer.Option(False, "--no-browser", help="only print the URL to open")) -> None:
    """Authorise an oauth2 connection: browser consent (PKCE + state), tokens into the secret store."""
    from canonry.oauth import connect as oauth_connect
    from canonry.oauth import requested_scopes

    connection = _load_one(config, connection_id)
    browser = None
    if no_browser:
        def browser(url: str) -> None:
            err_console.print(f"Open this URL to authorise {connection_id}:\n  {url}", markup=False,
                              highlight=False, soft_wrap=True)
    console.print(f"connecting {connection_id} ({connection.provider}); scopes: "
                  f"{' '.join(requested_scopes(connection))}", markup=False)
    try:
        result = oauth_connect(connection, browser=browser, timeout=timeout)
    except CanonryError as exc:
        _fail(str(exc))
    console.print(f"{connection_id}: connected; token set stored at {result.reference}; granted scopes: "
                  f"{' '.join(result.scopes)}", markup=False)


@app.command()
def disconnect(connection_id: str = typer.Argument(..., help="the connection to disconnect"),
               config: Path | None = typer.Option(None, "--config"),
               force: bool = typer.Option(False, help="delete the stored secrets even if revocation fails")) -> None:
    """Revoke the connection's tokens at the provider and delete them from the secret store."""
    from canonry.oauth import disconnect as oauth_disconnect

    connection = _load_one(config, connection_id)
    try:
        result = oauth_disconnect(connection, force=force)
    except CanonryError as exc:
        _fail(str(exc))
    console.print(f"{connection_id}: revoked {', '.join(result.revoked) or 'nothing'}; stored secret "
                  f"{'deleted' if result.deleted else 'not found (nothing to delete)'}", markup=False)


@secret_app.command("set")
def secret_set(name: str = typer.Argument(..., help="the name in local:NAME"),
               from_env: str | None = typer.Option(None, "--from-env", help="read the value from this variable"),
               ) -> None:
    """Store a secret in the local encrypted store; the value is read from stdin (or a prompt), never argv."""
    from canonry.secrets import SecretNotFound, store_secret

    if from_env:
        value = os.environ.get(from_env, "")
    elif sys.stdin.isatty():
        value = typer.prompt(f"value for local:{name}", hide_input=True)
    else:
        value = sys.stdin.read().rstrip("\n")
    if not value:
        _fail("empty value: nothing stored")
    try:
        store_secret(f"local:{name}", value)
    except SecretNotFound as exc:
        _fail(f"{exc} — {exc.hint}")
    console.print(f"stored local:{name}", markup=False)


@secret_app.command("delete")
def secret_delete(name: str = typer.Argument(...)) -> None:
    """Delete a secret from the local store."""
    from canonry.secrets import delete_secret

    found = delete_secret(f"local:{name}")
    console.print(f"local:{name} {'deleted' if found else 'not found'}", markup=False)
    raise typer.Exit(0 if found else 1)


@secret_app.command("list")
def secret_list() -> None:
    """Names in the local store (never values)."""
    from canonry.secrets import LocalStore

    for name in LocalStore().names():
        console.print(f"local:{name}", markup=False)


@app.command()
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Per connection: state (healthy, degraded, needs_reauth, misconfigured, failing), last successful
    sync, freshness, records, error classes of the last runs."""
    from canonry.forensics import connection_status
    from canonry.warehouse import warehouse_path

    if not warehouse_path().exists():
        _fail(f"no warehouse at {warehouse_path()} yet: run `canonry sync` or `make demo` first")
    records = connection_status()
    if as_json:
        print(json.dumps(records, default=str))
        return
    table = Table(title="Connections")
    for column in ("connection", "provider", "state", "last success", "freshness", "records", "last run",
                   "error classes (last runs)"):
        table.add_column(column)
    for r in records:
        freshness = "" if r["freshness_s"] is None else _duration(r["freshness_s"])
        state = r["state"] + (" (stalled)" if r["stalled"] else "")
        table.add_row(r["connection_id"], r["provider"], state, str(r["last_success"] or "never"), freshness,
                      str(r["records"]), str(r["last_run_status"] or ""), ", ".join(r["error_classes"]))
    console.print(table)
    for sync_name, count in _parked_records():
        err_console.print(f"reverse ETL: {sync_name}: {count} record(s) parked after repeated rejections "
                          f"(see ops.push_quarantine; `canonry push {sync_name} --retry-parked` releases them)",
                          markup=False, soft_wrap=True)


def _parked_records() -> list[tuple[str, int]]:
    from canonry import ops
    from canonry.warehouse import connect

    conn = connect()
    try:
        ops.ensure_tables(conn)
        return conn.execute("select model, count(*) from ops.push_quarantine where parked group by model "
                            "order by model").fetchall()
    finally:
        conn.close()


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


@app.command()
def replay(connection_id: str = typer.Argument(..., help="connection id"),
           from_load: str | None = typer.Option(None, "--from", help="report the records brought by this load "
                                                                     "id and later ones"),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Rebuild staging and canonical rows from the stored raw payloads (no API call); report what changed."""
    from canonry.forensics import replay as run_replay

    try:
        report = run_replay(connection_id, from_load)
    except CanonryError as exc:
        _fail(str(exc))
    if as_json:
        print(json.dumps(report.as_dict(), default=str))
    else:
        console.print(f"replayed {connection_id} ({report.provider}) from {report.raw_rows} raw rows in "
                      f"{report.loads} loads: dbt {'passed' if report.success else 'FAILED'}, 0 API calls")
        table = Table(title="What the replay changed" + (f" (records of loads >= {from_load})" if from_load else ""))
        for column in ("canonical table", "added", "removed", "changed", "unchanged"):
            table.add_column(column, justify="left" if column == "canonical table" else "right")
        for change in report.changes:
            table.add_row(change.table, str(len(change.added)), str(len(change.removed)), str(len(change.changed)),
                          str(change.unchanged))
        console.print(table)
        for failure in report.failures:
            err_console.print(f"dbt {failure}")
    raise typer.Exit(0 if report.success else 1)


@app.command()
def trace(provider: str = typer.Argument(..., help="provider slug"),
          remote_id: str = typer.Argument(..., help="the provider's id of the record"),
          connection_id: str | None = typer.Option(None, "--connection", "-c"),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Every stored version of a record, the load that brought it, its canonical rows, errors, quarantine."""
    from canonry.forensics import trace as run_trace

    try:
        found = run_trace(provider, remote_id, connection_id)
    except CanonryError as exc:
        _fail(str(exc))
    if as_json:
        print(json.dumps(found, default=str))
    else:
        versions = Table(title=f"{provider} {remote_id}: stored versions (raw layer)")
        for column in ("#", "raw table", "connection", "updated at", "deleted", "load id", "run", "payload md5"):
            versions.add_column(column)
        for n, v in enumerate(found["versions"], 1):
            versions.add_row(str(n), v["raw_table"], v["connection_id"], str(v["remote_updated_at"]),
                             "yes" if v["is_deleted"] else "no", v["load_id"], v["run_id"] or "",
                             v["payload_md5"][:12])
        console.print(versions)
        for row in found["canonical"]:
            console.print(f"→ {row['table']}: id {_pk(row)}, "
                          f"is_deleted={row['is_deleted']}, remote_updated_at={row['remote_updated_at']}, "
                          f"_load_id={row['_load_id']}")
        if not found["canonical"]:
            console.print("→ no canonical row (not built yet, or filtered out)")
        for error in found["errors"]:
            console.print(f"error [{error['error_class']}] run {error['run_id']}: {error['message']}")
        for entry in found["quarantine"]:
            console.print(f"quarantined: {entry}")
    raise typer.Exit(0 if found["versions"] else 1)


def _pk(row: dict) -> str:
    keys = [k for k in row if k.endswith("_id") and k not in ("connection_id", "tenant_id", "remote_id")]
    return str(row[keys[0]]) if keys else ""


@sandbox_app.command("serve")
def sandbox_serve(provider: str = typer.Argument(..., help="provider slug, e.g. hubspot"),
                  port: int = typer.Option(0, help="port on 127.0.0.1 (0: any free port)"),
                  seed: int = typer.Option(7), scale: int = typer.Option(200, help="records per object"),
                  token: str | None = typer.Option(None, help="the credential the sandbox accepts"),
                  tls: bool = typer.Option(False, help="serve HTTPS with a generated self-signed certificate"),
                  no_rate_limits: bool = typer.Option(False, help="disable the provider's rate limits"),
                  page_cache: bool = typer.Option(False, help="keep rendered list pages until their records "
                                                  "change (HubSpot; a benchmark instrument)"),
                  faults: str | None = typer.Option(None, help='fault plan as JSON, e.g. \'{"error_rate": 0.1, '
                                                    '"truncate_rate": 0.05, "storm_429": 20}\' (also settable per '
                                                    'run: POST /_sandbox/faults)')) -> None:
    """Serve one provider sandbox until stopped."""
    from canonry.sandbox import SIMULATORS, build_simulator
    from canonry.sandbox.engine import SandboxServer, SandboxState
    from canonry.warehouse import data_dir

    if provider not in SIMULATORS:
        _fail(f"unknown provider {provider!r}; sandboxes exist for: {', '.join(sorted(SIMULATORS))}", 2)
    from canonry.sandbox import DEFAULT_TOKENS

    state = SandboxState(slug=provider, seed=seed, scale=scale, rate_limits=not no_rate_limits,
                         page_cache=page_cache)
    state.tokens.add(token or DEFAULT_TOKENS.get(provider, f"sandbox-{provider}-token"))
    if faults:
        import random

        from canonry.sandbox.engine import FaultPlan

        try:
            state.faults = FaultPlan(**json.loads(faults))
        except (ValueError, TypeError) as exc:
            _fail(f"--faults: not a fault plan ({exc}); fields: {', '.join(FaultPlan.__dataclass_fields__)}", 2)
        state.rng = random.Random(state.faults.seed)
    server = SandboxServer(build_simulator(provider, state), state, port=port, tls=tls,
                           cert_dir=data_dir() / "sandbox")
    print(f"serving {provider} at {server.base_url}", flush=True)
    if server.cert_path:
        print(f"certificate: {server.cert_path}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


@app.command()
def ui(port: int = typer.Option(3000, help="Dagster UI port on 127.0.0.1"),
       scale: int = typer.Option(300)) -> None:
    """Start the demo sandboxes and the Dagster UI (dagster dev) against them."""
    import subprocess

    from canonry.demo import authorise_oauth_connections, demo_config, resolved_config, start_demo_sandboxes
    from canonry.warehouse import data_dir

    sandboxes = start_demo_sandboxes(demo_config(require_tokens=False), scale=scale)
    config, config_file = resolved_config(sandboxes, require_tokens=False)
    authorise_oauth_connections(config, console.print)
    home = data_dir() / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "CANONRY_CONFIG": str(config_file)}
    console.print(f"sandboxes: {', '.join(f'{p} at {s.base_url}' for p, s in sandboxes.servers.items())}")
    console.print(f"Dagster UI: http://127.0.0.1:{port}")
    try:
        subprocess.run([sys.executable, "-m", "dagster", "dev", "-m", "dagster_project.definitions",
                        "-h", "127.0.0.1", "-p", str(port)], env=env, check=False)
    except KeyboardInterrupt:
        pass
    finally:
        sandboxes.stop()


if __name__ == "__main__":
    app()
