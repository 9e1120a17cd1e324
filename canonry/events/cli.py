"""`canonry events ...`: subscribers of outbound change events, delivery, dead letters and status.

The signing secret is printed once by `subscribe` (stdout, nothing else on that line); the secret store
keeps it, the subscribers file only its reference.
"""

from __future__ import annotations

import json

import typer

from canonry.events.subscribers import DEFAULT_BACKOFF_SECONDS, DEFAULT_MAX_ATTEMPTS, SubscriberError

events_app = typer.Typer(help="Outbound change events: signed webhooks of canonical creates/updates/deletes.",
                         no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@events_app.command()
def subscribe(tenant: str = typer.Option(..., "--tenant", help="the tenant whose records' changes are sent"),
              url: str = typer.Option(..., "--url", help="where events are POSTed (https; http only on loopback)"),
              events: list[str] = typer.Option(["*"], "--events",
                                               help="pattern(s) like crm.contact.* or ats.*.deleted (repeatable)"),
              max_attempts: int = typer.Option(DEFAULT_MAX_ATTEMPTS, help="attempts before a dead letter"),
              backoff: float = typer.Option(DEFAULT_BACKOFF_SECONDS, "--backoff-seconds",
                                            help="first retry delay; doubles each attempt"),
              allow_private_network: bool = typer.Option(False, help="permit a private-network URL"),
              label: str = typer.Option("", help="a note to tell subscribers apart")) -> None:
    """Add a subscriber. Its signing secret is printed once (keep it: receivers verify with it)."""
    from canonry.events.subscribers import add_subscriber

    try:
        entry, secret = add_subscriber(tenant, url, events, max_attempts=max_attempts, backoff_seconds=backoff,
                                       allow_private_network=allow_private_network, label=label)
    except SubscriberError as exc:
        _fail(str(exc))
    typer.echo(f"subscriber {entry.subscriber_id} for tenant {entry.tenant} ({', '.join(entry.events)}) — "
               "signing secret, shown once:", err=True)
    typer.echo(secret)


@events_app.command("list")
def list_subscribers(as_json: bool = typer.Option(False, "--json")) -> None:
    """Subscribers (never their secrets)."""
    from canonry.events.subscribers import load_subscribers

    rows = [s.public() for s in load_subscribers().values()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['subscriber_id']}  {r['tenant']}  {','.join(r['events'])}  {r['url']}  "
                   f"{r['max_attempts']} attempts  {r['label']}")


@events_app.command()
def unsubscribe(subscriber_id: str) -> None:
    """Remove a subscriber and its secret (its pending deliveries are no longer sent)."""
    from canonry.events.subscribers import remove_subscriber

    try:
        entry = remove_subscriber(subscriber_id)
    except SubscriberError as exc:
        _fail(str(exc))
    typer.echo(f"removed {entry.subscriber_id} (tenant {entry.tenant})")


@events_app.command()
def capture() -> None:
    """Capture canonical changes now (builds do this themselves: `sync`, `demo`, `replay`, Dagster's dbt step)."""
    from canonry.events.capture import capture as run_capture

    result = run_capture()
    if result.skipped:
        typer.echo(f"nothing captured: {result.skipped}")
    elif result.baseline:
        typer.echo("baseline recorded (the first capture emits no events)")
    else:
        typer.echo(f"{result.total} event(s), {result.deliveries} delivery(ies) queued")


@events_app.command()
def deliver(subscriber: str | None = typer.Option(None, "--subscriber", help="only this subscriber"),
            watch: bool = typer.Option(False, "--watch", help="keep delivering (a service) until interrupted"),
            interval: float = typer.Option(5.0, "--interval", min=0.1, help="seconds between passes (--watch)"),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Send what is due: signed POSTs, retried with exponential back-off, dead letters after the last attempt."""
    from canonry.events.delivery import deliver as run_pass
    from canonry.events.delivery import watch as run_watch

    def show(report) -> None:
        if as_json:
            typer.echo(json.dumps({"delivered": report.delivered, "failed": report.failed, "dead": report.dead,
                                   "blocked": report.blocked, "subscribers": report.per_subscriber}))
        else:
            typer.echo(report.summary())

    if watch:
        if subscriber:
            _fail("--watch delivers to every subscriber; leave out --subscriber")
        try:
            run_watch(interval, show)
        except KeyboardInterrupt:
            return
    show(run_pass(subscriber))


@events_app.command()
def replay(subscriber: str | None = typer.Option(None, "--subscriber", help="only this subscriber's"),
           event: str | None = typer.Option(None, "--event", help="only this event id")) -> None:
    """Dead letters back to pending (attempts reset): the next `deliver` sends them."""
    from canonry.events.delivery import replay as run_replay

    count = run_replay(subscriber, event)
    typer.echo(f"{count} dead letter(s) queued again")


@events_app.command()
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Per subscriber: pending, delivered and dead deliveries, the next attempt, the last error."""
    from canonry.events.delivery import status as read_status

    rows = read_status()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no subscribers (`canonry events subscribe --tenant T --url …`)")
    for r in rows:
        line = (f"{r['subscriber_id']}  {r['tenant']}  {r['url']}: {r['delivered']} delivered, {r['pending']} "
                f"pending, {r['dead']} dead")
        if r["dead"]:
            line += f" (`canonry events replay --subscriber {r['subscriber_id']}`)"
        if r["last_error"]:
            line += f"; last error: {r['last_error']}"
        typer.echo(line)
