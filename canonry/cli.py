"""The `canonry` command: demo, sync (`--jobs N`: canonry/sync_jobs.py), push, validate, connect, disconnect,
secret, status, replay, trace; the sub-apps sql/soql (guard), api, webhooks, tenant (canonry/tenants.py);
observability (canonry/cli_observe.py) and local tools (sandbox serve, ui, dbt-docs: canonry/cli_local.py).
Shared output helpers: canonry/cli_output.py.

Everything printed passes the redaction filter (`canonry.secrets.redact`): no token reaches the terminal.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import typer
from rich.table import Table

import canonry  # noqa: F401  (switches telemetry off before anything else is imported)
from canonry import tracing
from canonry.api.cli import api_app
from canonry.cli_governance import dsar_app, governance_commands, mask_app, retention_app
from canonry.cli_local import local_commands, sandbox_app, scaffold_app
from canonry.cli_observe import alerts_app, observe_commands, ops_app
from canonry.cli_output import _duration, _fail, _load_one, console, err_console
from canonry.cli_rollout import rollout_app, rollout_commands
from canonry.cli_secret import secret_app
from canonry.errors import CanonryError
from canonry.events.cli import events_app
from canonry.guard.cli import soql_app, sql_app
from canonry.tenants import tenant_app
from canonry.webhooks.cli import webhooks_app

app = typer.Typer(help="Canonry: ATS and CRM provider APIs -> canonical warehouse tables.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(scaffold_app, name="scaffold")
app.add_typer(soql_app, name="soql")
app.add_typer(sql_app, name="sql")
app.add_typer(api_app, name="api")
app.add_typer(events_app, name="events")
app.add_typer(ops_app, name="ops")
app.add_typer(alerts_app, name="alerts")
# metrics, dashboard, canary (canonry/cli_observe.py) are top-level commands
app.registered_commands += observe_commands.registered_commands
app.registered_commands += rollout_commands.registered_commands
# sandbox serve, ui, dbt-docs (canonry/cli_local.py)
app.registered_commands += local_commands.registered_commands
app.add_typer(rollout_app, name="rollout")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(tenant_app, name="tenant")
# audit (top level), dsar and retention (canonry/cli_governance.py)
app.registered_commands += governance_commands.registered_commands
app.add_typer(dsar_app, name="dsar")
app.add_typer(retention_app, name="retention")
app.add_typer(mask_app, name="mask")
app.add_typer(secret_app, name="secret")


@app.callback()
def _main(ctx: typer.Context,
          log_format: str | None = typer.Option(None, "--log-format", envvar="CANONRY_LOG_FORMAT",
                                                help="text (default) or json: one JSON object per log line on "
                                                     "stderr, with run id, connection, provider, trace id")) -> None:
    """Canonry: ATS and CRM provider APIs -> canonical warehouse tables."""
    from canonry.logs import configure
    from canonry.secrets import install_redaction
    from canonry.warehouse import WAREHOUSE_COMMANDS, check_warehouse

    install_redaction()
    try:
        configure(log_format)
    except CanonryError as exc:
        _fail(str(exc))
    if ctx.invoked_subcommand in WAREHOUSE_COMMANDS:
        try:
            check_warehouse()
        except CanonryError as exc:
            _fail(str(exc))


@app.command()
def demo(scale: int = typer.Option(200, help="records per object in each sandbox"),
         seed: int = typer.Option(7, help="sandbox data seed"),
         activity: int = typer.Option(5, help="record changes simulated before a repeat run"),
         as_json: bool = typer.Option(False, "--json", help="one JSON document on stdout (no progress)")) -> None:
    """Run the main job on the embedded default: sandboxes -> DuckDB -> canonical tables -> validation."""
    from canonry.demo import run_demo
    from canonry.warehouse import describe, postgres_url

    started = time.perf_counter()
    try:
        report = run_demo(scale=scale, seed=seed, activity=activity,
                          progress=(lambda m: None) if as_json else (lambda m: console.print(m)))
    except (CanonryError, RuntimeError) as exc:
        _fail(str(exc))
    total = time.perf_counter() - started
    failed = [r for r in report.syncs if r.status != "success"]
    succeeded = not failed and report.dbt.success and report.gate.success
    if as_json:
        from canonry.cli_output import sync_result_json
        from canonry.secrets import redact

        gate_by_table = report.gate.tables()
        print(redact(json.dumps({
            "success": succeeded, "warehouse": describe(), "seconds": round(total, 1),
            "phases_s": {k: round(v, 1) for k, v in report.seconds.items()}, "activity": report.activity,
            "syncs": [sync_result_json(r) for r in report.syncs],
            "dbt": {"success": report.dbt.success, "nodes": len(report.dbt.nodes),
                    "failures": [{"node": n.name, "status": n.status, "message": n.message}
                                 for n in report.dbt.failures()]},
            "tables": [{"table": f"canonical.{t}", "rows": n, "validation_passed": bool(gate_by_table.get(t))}
                       for t, n in report.rows.items()],
        }, default=str)))
        raise typer.Exit(0 if succeeded else 1)

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
    console.print(f"Warehouse: {describe()}", soft_wrap=True)
    client = "psql" if postgres_url() else "duckdb"
    console.print(f"Query it:  {client} {describe()} \"select * from canonical.crm_contacts limit 5\"",
                  soft_wrap=True)
    if not succeeded:
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
         transform: bool = typer.Option(True, help="run dbt and the validation gate after loading"),
         wait: float | None = typer.Option(None, "--wait", min=0, help="seconds to wait for the DuckDB warehouse "
                                           "when another process writes it (default: "
                                           "CANONRY_WAREHOUSE_LOCK_TIMEOUT or 1800); syncs extract "
                                           "concurrently and load one at a time"),
         jobs: int | None = typer.Option(None, "--jobs", "-j", min=1, help="connections synced at once, one "
                                         "process each (default: the core count on PostgreSQL, 1 on DuckDB, "
                                         "where loads wait for each other)"),
         as_json: bool = typer.Option(False, "--json", help="one JSON document on stdout (no progress)")) -> None:
    """Sync connections into the raw layer, then build and validate the canonical tables."""
    from canonry.sync_jobs import attach_parent_trace
    from canonry.validation import load_connections
    from canonry.warehouse_lock import TIMEOUT_ENV

    if wait is not None:
        os.environ[TIMEOUT_ENV] = str(wait)
    try:
        # --no-transform builds nothing: an objects: subset that would fail dbt's relationships tests is fine.
        model = load_connections(config, builds_canonical=transform)
    except CanonryError as exc:
        _fail(f"refusing to sync: {exc}")
    try:
        with attach_parent_trace():  # a child of `sync --jobs N` continues its parent's trace
            _sync_and_transform(model, connection, full_refresh, transform, as_json, jobs, config)
    except CanonryError as exc:  # the warehouse stayed busy longer than --wait
        _fail(str(exc))


def _sync_and_transform(model, connection: list[str] | None, full_refresh: bool, transform: bool,
                        as_json: bool, jobs: int | None, config: Path | None) -> None:
    from canonry.cli_rollout import unpaused_for_sync
    from canonry.sync_jobs import default_jobs, sync_connections

    selected = [c for c in model.connections if not connection or c.id in connection]
    unknown = set(connection or []) - {c.id for c in model.connections}
    if unknown:
        _fail(f"unknown connection id(s): {', '.join(sorted(unknown))}")
    selected, held = unpaused_for_sync(selected)
    transform = transform and bool(selected)
    jobs = jobs or default_jobs(len(selected))
    # One trace per run: each connection's sync, then dbt and the gate, under one root span.
    with tracing.span("canonry.run", **{"canonry.command": "sync", "canonry.connections": len(selected),
                                        "canonry.jobs": jobs}):
        results = sync_connections(selected, jobs=jobs, config=config, full_refresh=full_refresh, as_json=as_json)
        failures = sum(bool(r["error"]) for r in results)
        document: dict = {"syncs": results, "paused": held}
        if transform:
            from canonry.transform import build_for
            from expectations.gate import run_gate, tables_for_connections

            synced = sorted({c.provider for c in selected})
            with console.status(f"dbt build ({', '.join(synced)} lineage) …") if not as_json else _no_status():
                dbt_result = build_for(synced)
            with console.status("validation gate …") if not as_json else _no_status():
                gate = run_gate(tables_for_connections(selected))
            document["dbt"] = {"success": dbt_result.success, "error": dbt_result.error,
                               "failures": [{"node": n.name, "status": n.status, "message": n.message}
                                            for n in dbt_result.failures()]}
            document["validation"] = {"success": gate.success, "expectations": len(gate.checks),
                                      "failures": [{"table": c.table, "expectation": c.expectation, "column": c.column}
                                                   for c in gate.failed()]}
            if not as_json:
                console.print(f"dbt build: {'passed' if dbt_result.success else 'FAILED'}")
                if dbt_result.error and not dbt_result.nodes:  # refused or never started (a rollout pin)
                    err_console.print(dbt_result.error, markup=False, soft_wrap=True)
                for node in dbt_result.failures():
                    err_console.print(f"dbt {node.name}: {node.status} {node.message or ''}")
                console.print(f"validation: {'passed' if gate.success else 'FAILED'} ({len(gate.checks)} expectations)")
                for check in gate.failed():
                    err_console.print(f"validation failed: {check.table} {check.expectation}({check.column})")
            failures += (not dbt_result.success) + (not gate.success)
    tracing.shutdown()
    if as_json:
        from canonry.secrets import redact

        document["success"] = not failures
        print(redact(json.dumps(document, default=str)))
    raise typer.Exit(1 if failures else 0)


def _no_status():
    from contextlib import nullcontext

    return nullcontext()


@app.command()
@tracing.traced("canonry.run", **{"canonry.command": "push"})
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
         shadow: bool = typer.Option(False, "--shadow", help="staged write-back: build and gate like a push, "
                                     "log each change it would write in ops.push_log (status shadow), write "
                                     "nothing; then --limit N as a canary, then a full push"),
         as_json: bool = typer.Option(False, "--json", help="machine-readable result")) -> None:
    """Push a sync's changes into its CRM connections, gated by dbt tests and GE suites.

    A real run builds the model and its upstream (dbt tests included), runs the GE suites of the canonical
    tables it reads, and pushes only when every one passed in that build. Only changed fields are sent.
    """
    from canonry import reverse_etl
    from canonry.validation import load_connections

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
                                  retry_parked=retry_parked, shadow=shadow,
                                  progress=None if as_json else lambda line: console.print(line, markup=False))
    except CanonryError as exc:
        _fail(f"refusing to push: {exc}")
    if as_json:
        print(json.dumps(result.as_dict(), default=str))
        raise typer.Exit(0 if result.success else 1)
    _print_push(result)
    raise typer.Exit(0 if result.success else 1)


def _print_push(result) -> None:
    if result.dry_run or any(c.status == "shadow" for c in result.connections):
        for c in result.connections:
            if c.status == "paused":
                console.print(f"{c.connection_id}: paused, nothing planned or written", markup=False)
                continue
            mode = ("shadow: logged in ops.push_log (status shadow), nothing written" if c.status == "shadow"
                    else "dry run: nothing written")
            console.print(f"{c.connection_id}: would insert {c.inserts}, update {c.updates}, delete {c.deletes} "
                          f"(unchanged {c.unchanged}, skipped by the mode {c.skipped}, parked {c.parked}, "
                          f"data errors {len(c.data_errors)}, held back by --limit {c.held_back}; "
                          f"{mode})", markup=False)
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


@app.command()
def connect(connection_id: str = typer.Argument(..., help="the connection to authorise"),
            config: Path | None = typer.Option(None, "--config"),
            timeout: int = typer.Option(300, help="seconds to wait for the browser to come back"),
            no_browser: bool = typer.Option(False, "--no-browser", help="only print the URL to open")) -> None:
    """Authorise an oauth2 connection: browser consent (PKCE + state), tokens into the secret store."""
    from canonry.oauth import connect as oauth_connect
    from canonry.oauth_endpoints import requested_scopes

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


@app.command()
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Per connection: state (healthy, degraded, needs_reauth, misconfigured, failing), last successful
    sync, freshness, records, error classes of the last runs; then the open alerts (ops.alerts: failed
    Dagster runs, stale canonical tables) until the connection they name syncs successfully again."""
    from canonry.forensics import connection_status
    from canonry.warehouse import postgres_url, warehouse_path

    if not postgres_url() and not warehouse_path().exists():
        _fail(f"no warehouse at {warehouse_path()} yet: run `canonry sync` or `make demo` first")
    from canonry.ops import open_alerts

    try:
        records = connection_status()
        alerts = open_alerts()
    except CanonryError as exc:  # the warehouse stayed busy (writer lock) longer than the lock timeout
        _fail(str(exc))
    from canonry.cli_rollout import print_rollout_state
    from canonry.rollout.pause import pauses
    from canonry.rollout.pins import pins

    paused, pinned = pauses(), pins()
    for record in records:
        record["open_alerts"] = [a for a in alerts if a["connection_id"] == record["connection_id"]]
        record["paused"] = paused.get(record["connection_id"])
        record["pinned"] = pinned.get(record["connection_id"])
    from canonry.errors import runbook

    for r in records:
        r["runbook"] = runbook(r["last_error_class"])
    if as_json:
        from canonry.cli_output import documented_status

        print(json.dumps([documented_status(r) for r in records], default=str))
        return
    from canonry.cli_output import status_table

    console.print(status_table(records, console.width, _duration))
    print_rollout_state(paused, pinned)
    if alerts:
        console.print(f"Open alerts ({len(alerts)}):", markup=False)
        for a in alerts:
            console.print(f"- {str(a['raised_at'])[:19]} {a['severity']} {a['connection_id'] or '(no connection)'} "
                          f"[{a['error_class'] or 'unclassified'}] from {a['source']}, run {a['run_id'] or '-'}",
                          markup=False, soft_wrap=True)
            console.print(f"    {(a['message'] or '')[:400]}", markup=False, soft_wrap=True)
    else:
        console.print("No open alerts.")
    for r in records:
        if r["runbook"] and r["last_run_status"] != "success":
            console.print(f"{r['connection_id']}: {r['last_error_class']} — runbook {r['runbook']}",
                          markup=False, soft_wrap=True)
    from canonry.webhooks.journal import webhook_status

    hooks = webhook_status()
    if hooks:
        lag = Table(title="Webhooks (canonry webhooks status)")
        for column in ("connection", "pending", "oldest pending", "applied", "max drain lag", "dead"):
            lag.add_column(column)
        for h in hooks:
            lag.add_row(h["connection_id"], str(h["pending"]),
                        "" if h["oldest_pending_age_s"] is None else _duration(h["oldest_pending_age_s"]),
                        str(h["applied"]), "" if h["max_drain_lag_s"] is None else _duration(h["max_drain_lag_s"]),
                        str(h["dead"]) + (f" ({'; '.join(h['dead_reasons'])})" if h["dead_reasons"] else ""))
        console.print(lag)
    for sync_name, count in _parked_records():
        err_console.print(f"reverse ETL: {sync_name}: {count} record(s) parked after repeated rejections "
                          f"(see ops.push_quarantine; `canonry push {sync_name} --retry-parked` releases them)",
                          markup=False, soft_wrap=True)
    from canonry.events.delivery import dead_letters

    for subscriber_id, count in dead_letters():
        err_console.print(f"change events: subscriber {subscriber_id}: {count} dead letter(s) (`canonry events "
                          f"status`; `canonry events replay --subscriber {subscriber_id}`)", markup=False, soft_wrap=True)


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


if __name__ == "__main__":
    app()
