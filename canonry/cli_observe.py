"""The `canonry` commands of observability: metrics, alert rules, the health page, the canary and ops
retention (registered on the main app by canonry/cli.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from canonry.cli_output import _duration, _fail, _load_one, console
from canonry.errors import CanonryError

observe_commands = typer.Typer()
ops_app = typer.Typer(help="The ops schema: retention.", no_args_is_help=True)
alerts_app = typer.Typer(help="Alert rules (alerts.yml): check the file, evaluate now, list open alerts.",
                         no_args_is_help=True)


@observe_commands.command()
def metrics(as_json: bool = typer.Option(False, "--json"),
            prometheus: bool = typer.Option(False, "--prometheus", help="print the Prometheus text format"),
            since: str | None = typer.Option(None, "--since", help="only runs, replays and guard checks since "
                                             "this duration ago (30m, 24h, 7d) or ISO time")) -> None:
    """The four outcome metrics from ops: time to first successful sync, failure rate by provider x endpoint
    x error class, replay success and time to resolution, the guard's verdict mix."""
    from canonry import metrics as ops_metrics
    from canonry.warehouse import warehouse_path

    if not warehouse_path().exists():
        _fail(f"no warehouse at {warehouse_path()} yet: run `canonry sync` or `make demo` first")
    try:
        bound = ops_metrics.parse_since(since)
    except CanonryError as exc:
        _fail(str(exc))
    if prometheus:
        sys.stdout.write(ops_metrics.prometheus_text(bound).decode())
        return
    data = ops_metrics.compute(bound)
    if as_json:
        print(json.dumps(data, default=str))
        return
    _print_metrics(data)


def _print_metrics(data: dict) -> None:
    def fmt(seconds: float | None) -> str:
        return "" if seconds is None else _duration(seconds)

    table = Table(title="Time to first successful sync")
    for column in ("connection", "provider", "seconds"):
        table.add_column(column)
    for r in data["time_to_first_success"]:
        table.add_row(r["connection_id"], r["provider"], fmt(r["seconds"]) or "never")
    console.print(table)
    table = Table(title="Sync failure rate (failed runs / runs)")
    for column in ("provider", "endpoint", "error class", "failed", "rate"):
        table.add_column(column)
    for r in data["failure_rates"]:
        table.add_row(r["provider"], r["endpoint"], r["error_class"], f"{r['failures']}/{r['runs']}",
                      f"{r['rate']:.1%}")
    console.print(table)
    table = Table(title="Incidents and replays")
    for column in ("connection", "resolved", "open", "mean to resolve", "replays ok"):
        table.add_column(column)
    replays = {r["connection_id"]: r for r in data["replays"]}
    for r in data["resolution"]:
        replay = replays.get(r["connection_id"])
        table.add_row(r["connection_id"], str(r["resolved"]), str(r["open"]), fmt(r["mean_s"]),
                      f"{replay['succeeded']}/{replay['replays']}" if replay else "")
    console.print(table)
    table = Table(title="Guard verdicts")
    for column in ("kind", "verdict", "checks", "share"):
        table.add_column(column)
    for r in data["guard"]:
        table.add_row(r["kind"], r["verdict"], str(r["checks"]), f"{r['share']:.1%}")
    console.print(table)


ALERTS_OPTION = typer.Option(None, "--alerts", help="alert rules file (default: CANONRY_ALERTS or "
                                                     "<data dir>/alerts.yml)")


@alerts_app.command("check")
def alerts_check(alerts: Path | None = ALERTS_OPTION) -> None:
    """Validate the alert rules file; every problem with its file:line."""
    from canonry.alerting.rules import load_alerts

    try:
        model = load_alerts(alerts, required=True)
    except CanonryError as exc:
        _fail(str(exc))
    console.print(f"{len(model.rules)} rule(s), {len(model.destinations)} destination(s): valid")


@alerts_app.command("evaluate")
def alerts_evaluate(alerts: Path | None = ALERTS_OPTION,
                    config: Path | None = typer.Option(None, "--config", help="connections file (schedules for "
                                                       "freshness rules in schedule intervals)"),
                    dry_run: bool = typer.Option(False, "--dry-run", help="record alerts but send nothing")) -> None:
    """Evaluate every rule now: open, keep or resolve alerts, and deliver what changed."""
    from canonry.alerting import connection_schedules, evaluate
    from canonry.alerting.rules import load_alerts

    try:
        model = load_alerts(alerts, required=True)
    except CanonryError as exc:
        _fail(str(exc))
    report = evaluate(model, schedules=connection_schedules(config), send=not dry_run)
    for event in [*report.fired, *report.resolved]:
        console.print(event.title(), markup=False, soft_wrap=True)
    console.print(report.summary())


@alerts_app.command("list")
def alerts_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Open alerts of the rules, newest first, with their runbook."""
    from canonry.alerting import open_alerts

    rows = open_alerts()
    if as_json:
        print(json.dumps(rows, default=str))
        return
    for r in rows:
        console.print(f"[{r['severity']}] {r['rule_id']} {r['connection_id'] or ''}: {r['message']}"
                      + (f" — runbook {r['runbook']}" if r["runbook"] else ""), markup=False, soft_wrap=True)
    if not rows:
        console.print("no open alerts")


@observe_commands.command()
def dashboard(out: Path = typer.Option(Path("data/health.html"), "--out", help="where to write the page"),
              serve: bool = typer.Option(False, "--serve", help="serve it on 127.0.0.1 instead (fresh on every "
                                         "request, with /metrics and /runbooks/<class>.md)"),
              port: int = typer.Option(8765, help="port for --serve")) -> None:
    """The health page: per connection state, freshness vs SLO, last error and its runbook, open alerts,
    guard outcomes; one self-contained HTML file (no script, no CDN), readable on a phone."""
    from canonry import dashboard as health
    from canonry.warehouse import warehouse_path

    if not warehouse_path().exists():
        _fail(f"no warehouse at {warehouse_path()} yet: run `canonry sync` or `make demo` first")
    if serve:
        import uvicorn

        console.print(f"serving the health page at http://127.0.0.1:{port}/", markup=False)
        uvicorn.run(health.app(), host="127.0.0.1", port=port, log_level="warning")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(health.build(), encoding="utf-8")
    console.print(f"wrote {out}", markup=False, soft_wrap=True)


@ops_app.command("prune")
def ops_prune(older_than: str | None = typer.Option(None, "--older-than", help="age of the rows deleted (default: "
                                                    "CANONRY_OPS_RETENTION or 90d)"),
              dry_run: bool = typer.Option(False, "--dry-run", help="count, delete nothing")) -> None:
    """Delete old rows of the high-volume ops tables (API calls, errors, push log, validation results, guard
    audit, alert deliveries); per-run summaries are kept."""
    from canonry.retention import prune, retention

    try:
        age = retention(older_than)
    except CanonryError as exc:
        _fail(str(exc))
    counts = prune(age, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    console.print(", ".join(f"{table}: {n}" for table, n in counts.items()) + f" ({verb}; older than {age})",
                  markup=False, soft_wrap=True)


@observe_commands.command()
def canary(connection: str = typer.Option(..., "--connection", "-c", help="the connection to probe"),
           config: Path | None = typer.Option(None, "--config", help="connections file (default: CANONRY_CONFIG "
                                                                      "or data/connections.yml)")) -> None:
    """The cheapest authenticated read of a connection: latency and outcome, recorded in ops.canary_runs."""
    from canonry.canary import run as run_canary

    try:
        result = run_canary(_load_one(config, connection))
    except CanonryError as exc:
        _fail(str(exc))
    if result.ok:
        console.print(f"{result.connection_id}: ok (HTTP {result.status}) in {result.latency_ms:.0f} ms",
                      markup=False)
        return
    _fail(f"{result.connection_id}: canary failed in {result.latency_ms:.0f} ms: {result.error}")
