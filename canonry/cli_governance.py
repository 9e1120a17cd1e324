"""The `canonry` commands of governance: the audit trail, data subject requests and retention (registered on
the main app by canonry/cli.py; the logic lives in canonry/governance/)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from canonry.cli_output import _fail, console
from canonry.errors import CanonryError

governance_commands = typer.Typer()
dsar_app = typer.Typer(help="Data subject requests: find, export or erase one person's data.", no_args_is_help=True)
retention_app = typer.Typer(help="Retention of raw versions and ops tables.", no_args_is_help=True)
mask_app = typer.Typer(help="The masked views analysts read (canonical_masked).", no_args_is_help=True)
EMAIL = typer.Option(..., "--email", help="the person's email address")


@governance_commands.command("audit")
def audit_log(since: str | None = typer.Option(None, "--since", help="a duration ago (30m, 24h, 7d) or ISO time"),
              action: str | None = typer.Option(None, "--action", help="only this action (sync, push, api_read, "
                                                "query, dsar_find, dsar_export, dsar_erase, retention)"),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """The audit trail (ops.audit_log): who or what moved which data where."""
    from canonry.governance import audit
    from canonry.metrics import parse_since

    if action is not None and action not in audit.ACTIONS:
        _fail(f"--action {action!r} is not an audit action (one of {', '.join(audit.ACTIONS)})")
    try:
        rows = audit.entries(parse_since(since), action)
    except CanonryError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(rows, default=str, indent=2))
        return
    table = Table(title=f"audit log ({len(rows)} entries)")
    for name in ("when", "actor", "action", "target", "tenant", "records", "details"):
        table.add_column(name)
    for row in rows:
        table.add_row(str(row["logged_at"])[:19], row["actor"], row["action"], row["target"], row["tenant_id"] or "",
                      "" if row["records"] is None else str(row["records"]), str(row["details"] or "")[:80])
    console.print(table)


@dsar_app.command("find")
def dsar_find(email: str = EMAIL, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every place the person appears: raw payloads, staging/canonical rows, push state and log, the webhook
    journal, files of the data dir."""
    from canonry.governance import dsar

    found = dsar.find(email)
    found.pop("_person")
    if as_json:
        typer.echo(json.dumps(found, default=str, indent=2))
        return
    console.print(f"{len(found['places'])} places, connections: {', '.join(found['subject']['connections']) or '-'}",
                  markup=False)
    for place in found["places"]:
        console.print(f"  {place['kind']:9} {place['where']}  ({place['rows']})", markup=False, soft_wrap=True)


@dsar_app.command("export")
def dsar_export(email: str = EMAIL, out: Path = typer.Option(..., "--out", help="the JSON file to write")) -> None:
    """Write everything `find` lists (rows, values, file contents) as one JSON document."""
    from canonry.governance import dsar

    document = dsar.export(email, out)
    console.print(f"wrote {out} ({len(document['places'])} places)", markup=False, soft_wrap=True)


@dsar_app.command("erase")
def dsar_erase(email: str = EMAIL, yes: bool = typer.Option(False, "--yes", help="do it (else: what would go)")) -> None:
    """Erase the person: raw payloads rewritten, canonical rows redacted, ops/journal/files scrubbed, a tombstone
    so that syncs and replays do not bring them back. Idempotent."""
    from canonry.governance import dsar

    if not yes:
        found = dsar.find(email)
        console.print(f"would erase {len(found['places'])} places (run again with --yes)", markup=False)
        return
    done = dsar.erase(email)
    console.print(f"erased: {done['own_records']} own raw records, {done['rows_rewritten']} rows rewritten, "
                  f"{done['journal_events']} journal events, {done['files']} files", markup=False)


def _windows(keep: list[str]) -> dict:
    from canonry.governance.raw_retention import window

    out = {}
    for item in keep:
        connection, _, duration = item.partition("=")
        if not duration:
            _fail(f"--keep {item!r}: expected <connection>=<duration>, e.g. hubspot-acme=30d")
        out[connection] = window(duration, "", "")
    return out


@retention_app.command("apply")
def retention_apply(dry_run: bool = typer.Option(False, "--dry-run", help="count, delete nothing"),
                    default: str | None = typer.Option(None, "--default", help="window of every connection "
                                                       "(else CANONRY_RAW_RETENTION or 90d)"),
                    keep: list[str] = typer.Option([], "--keep", help="<connection>=<window>, per connection "
                                                   "(over its raw_retention in the connections file)"),
                    as_json: bool = typer.Option(False, "--json")) -> None:
    """Keep every record's latest raw version plus the versions of the window; prune ops and the audit log."""
    from canonry.governance import raw_retention

    try:
        windows = {**raw_retention.configured_windows(), **_windows(keep)}
        base = raw_retention.window(default, "CANONRY_RAW_RETENTION", raw_retention.DEFAULT_RAW_RETENTION)
        report = raw_retention.apply(windows, base, dry_run=dry_run)
    except CanonryError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    verb = "would delete" if dry_run else "deleted"
    console.print(f"raw versions {verb}: {sum(report.raw.values())}", markup=False)
    for place, count in report.raw.items():
        console.print(f"  {place}: {count}", markup=False)
    console.print("ops: " + ", ".join(f"{t}: {n}" for t, n in report.ops.items()) + f"; audit_log: {report.audit}",
                  markup=False, soft_wrap=True)


@mask_app.command("refresh")
def mask_refresh() -> None:
    """(Re)create the canonical_masked views (every build does it too)."""
    from canonry.governance import masking

    try:
        tables = masking.refresh()
    except CanonryError as exc:
        _fail(str(exc))
    console.print(f"{masking.SCHEMA}: {len(tables)} views", markup=False)


@mask_app.command("grant-analyst")
def mask_grant_analyst(role: str = typer.Option("canonry_analyst", "--role", help="the role to create or grant")
                       ) -> None:
    """PostgreSQL: a role with SELECT on canonical_masked and nothing else of the warehouse."""
    from canonry.governance import masking

    try:
        masking.grant_analyst(role)
    except CanonryError as exc:
        _fail(str(exc))
    console.print(f"{role} reads {masking.SCHEMA} only", markup=False)
