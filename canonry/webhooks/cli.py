"""`canonry webhooks serve | drain | register | replay | status`."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import typer

webhooks_app = typer.Typer(help="Receive provider webhooks (verified, journaled) and drain them into raw.",
                           no_args_is_help=True)
ConfigOption = typer.Option(None, "--config", help="connections file (default: CANONRY_CONFIG or "
                                                   "data/connections.yml)")


def _fail(message: str) -> None:
    from canonry.secrets import redact

    typer.echo(f"error: {redact(message)}", err=True)
    raise typer.Exit(1)


def _model(config: Path | None):
    from canonry.errors import CanonryError
    from canonry.validation import load_connections

    try:
        return load_connections(config, require_tokens=False, builds_canonical=False)  # registering builds nothing
    except CanonryError as exc:
        _fail(str(exc))


@webhooks_app.command("serve")
def serve(host: str = typer.Option("127.0.0.1", help="listen address"),
          port: int = typer.Option(8790, help="listen port (0: a free one, printed)"),
          config: Path | None = ConfigOption,
          max_body: int = typer.Option(2 * 1024 * 1024, help="largest accepted body, bytes")) -> None:
    """Serve POST /hooks/<connection id> for every connection with `webhooks:` in the connections file."""
    from canonry.secrets import redaction_filter
    from canonry.webhooks.server import connection_settings
    from canonry.webhooks.server import serve as run

    settings = connection_settings(_model(config))
    if not settings:
        _fail("no connection has a `webhooks:` block in the connections file: nothing to receive "
              "(see docs/WEBHOOKS.md)")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(redaction_filter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("canonry.webhooks")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def listening(url: str) -> None:
        typer.echo(f"listening on {url}", nl=True)
        for connection_id, s in sorted(settings.items()):
            typer.echo(f"  {s.provider:<10} {url}/hooks/{connection_id}")
        sys.stdout.flush()

    stats = run(settings, host=host, port=port, max_body=max_body, on_listen=listening)
    typer.echo(f"accepted {stats.accepted} events, {stats.duplicates} duplicates, refused "
               f"{json.dumps(stats.refused, sort_keys=True)}")


@webhooks_app.command("drain")
def drain(config: Path | None = ConfigOption,
          sync: bool = typer.Option(True, help="run an incremental sync for events that carry ids only"),
          build: bool = typer.Option(True, help="build the affected lineage afterwards"),
          every: float = typer.Option(0, help="keep draining every N seconds (0: once)")) -> None:
    """Apply journaled events to raw (deletes and full records at once; id-only events through one
    incremental sync per connection), then build the affected canonical tables."""
    from canonry.webhooks.drain import drain as run

    model = _model(config)
    while True:
        started = time.perf_counter()
        result = run(model, run_syncs=sync, run_build=build)
        rows = ", ".join(f"{k} {v}" for k, v in sorted(result.rows.items())) or "none"
        typer.echo(f"{result.events} events: {result.applied} applied, {result.dead} dead-lettered, "
                   f"{result.waiting} waiting; raw rows: {rows}; syncs: {result.synced or 'none'}; "
                   f"build: {'n/a' if result.built is None else ('passed' if result.built else 'FAILED')} "
                   f"({time.perf_counter() - started:.1f}s)")
        if result.paused:
            typer.echo("held by canonry pause (pending until `canonry resume`): " +
                       ", ".join(f"{cid} {n} event(s)" for cid, n in sorted(result.paused.items())))
        for error in result.errors:
            typer.echo(f"error: {error}", err=True)
        if every <= 0:
            if result.errors:
                raise typer.Exit(1)
            return
        time.sleep(every)


@webhooks_app.command("register")
def register(connection_id: str = typer.Option(..., "-c", "--connection", help="connection id"),
             url: str = typer.Option(..., "--url", help="the public URL of /hooks/<connection id>"),
             config: Path | None = ConfigOption) -> None:
    """Subscribe URL to the connection's changes at the provider (Pipedrive, Lever, Workable: through their
    API; Greenhouse, Ashby, HubSpot, Salesforce: an error naming the provider's settings step)."""
    from canonry.errors import CanonryError
    from canonry.webhooks.register import register as run

    model = _model(config)
    try:
        registration = run(model.get(connection_id), url)
    except CanonryError as exc:
        _fail(str(exc))
    typer.echo(f"{connection_id}: registered {url} at {registration.provider} "
               f"(webhook ids {', '.join(registration.webhook_ids)})")
    if registration.note:
        typer.echo(f"  {registration.note}")


@webhooks_app.command("replay")
def replay(connection_id: str | None = typer.Argument(None, help="only this connection's dead letters")) -> None:
    """Put dead-lettered events back in the queue (after fixing what made them fail), then drain."""
    from canonry.webhooks.journal import Journal

    journal = Journal()
    try:
        typer.echo(f"{journal.replay_dead(connection_id)} event(s) back to pending")
    finally:
        journal.close()


@webhooks_app.command("status")
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Per connection: events pending / applied / dead, the oldest pending event's age, the worst
    receipt-to-drain lag, dead-letter reasons."""
    from canonry.webhooks.journal import journal_path, webhook_status

    summary = webhook_status()
    if summary is None:
        _fail(f"no webhook journal at {journal_path()}: run `canonry webhooks serve` first")
    if as_json:
        print(json.dumps(summary))
        return
    for e in summary:
        lag = "" if e["max_drain_lag_s"] is None else f", max drain lag {e['max_drain_lag_s']:.1f}s"
        age = "" if e["oldest_pending_age_s"] is None else f", oldest pending {e['oldest_pending_age_s']}s"
        dead = f" ({'; '.join(e['dead_reasons'])})" if e["dead_reasons"] else ""
        typer.echo(f"{e['connection_id']}: {e['pending']} pending, {e['applied']} applied, "
                   f"{e['dead']} dead{dead}{lag}{age}")
