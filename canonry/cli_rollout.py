"""The `canonry` commands of rollout discipline (docs/ROLLOUTS.md): pause, resume, shadow, promote,
rollback (registered on the main app by canonry/cli.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from canonry.cli_output import _fail, _load_one, console, err_console

rollout_commands = typer.Typer()
# `canonry rollout ...`: the rollout state that is not a step of its own (registered by canonry/cli.py)
rollout_app = typer.Typer(help="Rollout state: pins that keep a promote or rollback live (docs/ROLLOUTS.md).",
                          no_args_is_help=True)

CONFIG_HELP = "connections file (default: CANONRY_CONFIG or data/connections.yml)"


def unpaused_for_sync(connections: list) -> tuple[list, list[dict]]:
    """`canonry sync`'s connections without the paused ones (narrowed where objects are paused), and the
    pauses that held something back (said on stderr, recorded in ops.pause_skips)."""
    from canonry.rollout.pause import apply_pauses

    kept, held = apply_pauses(connections, "canonry sync")
    for paused in held:
        err_console.print(f"skipped: {paused.describe()} (canonry resume -c {paused.connection_id})",
                          markup=False, soft_wrap=True)
    return kept, [{"connection_id": p.connection_id, "objects": p.objects, "reason": p.reason,
                   "paused_by": p.paused_by} for p in held]


@rollout_commands.command()
def pause(connection_id: str = typer.Option(..., "--connection", "-c", help="the connection to pause"),
          objects: str | None = typer.Option(None, "--objects", help="comma-separated objects to pause "
                                             "(default: the whole connection)"),
          reason: str | None = typer.Option(None, "--reason", help="why (shown by status and by every "
                                            "skipped run)"),
          config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP)) -> None:
    """Pause a connection (or some of its objects): sync, its Dagster schedule and runs, webhook drains and
    pushes skip it, recording the reason, until `canonry resume`."""
    from canonry.rollout.pause import check_objects
    from canonry.rollout.pause import pause as pause_connection

    connection = _load_one(config, connection_id)
    names = [o.strip() for o in objects.split(",") if o.strip()] if objects else None
    unknown = check_objects(connection, names or [])
    if unknown:
        _fail(f"--objects: {connection.provider} has no object(s) {', '.join(unknown)} "
              f"(connection {connection_id}); nothing paused")
    record = pause_connection(connection_id, names, reason)
    console.print(f"{record.describe()}; `canonry resume -c {connection_id}` lifts it", markup=False,
                  soft_wrap=True)


def print_rollout_state(paused: dict, pinned: dict) -> None:
    """`canonry status`'s lines under the table: pauses, and pins (what ordinary builds will refuse)."""
    for record in paused.values():
        console.print(f"Paused: {record.describe()} (canonry resume -c {record.connection_id})", markup=False,
                      soft_wrap=True)
    for pin in pinned.values():
        console.print(f"Pinned: {pin.describe()}; ordinary builds with other dbt code are refused "
                      f"(canonry rollout unpin -c {pin.connection_id})", markup=False, soft_wrap=True)


@rollout_commands.command()
def resume(connection_id: str = typer.Option(..., "--connection", "-c", help="the connection to resume"),
           config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP)) -> None:
    """Lift a pause: the next incremental sync picks up everything that changed meanwhile."""
    from canonry.rollout.pause import resume as resume_connection

    _load_one(config, connection_id)
    lifted = resume_connection(connection_id)
    if lifted is None:
        err_console.print(f"{connection_id} was not paused; nothing changed", markup=False)
        return
    console.print(f"resumed {connection_id} (was: {lifted.describe()}); its next sync continues from its "
                  "cursors", markup=False, soft_wrap=True)


def _connection_ids(config: Path | None, ids: list[str] | None) -> tuple[list[str] | None, list[str] | None]:
    """(connection ids, their providers) of `--connection`, checked against the connections file."""
    if not ids:
        return None, None
    from canonry.errors import CanonryError
    from canonry.validation import load_connections

    try:
        model = load_connections(config, require_tokens=False)
    except CanonryError as exc:
        _fail(str(exc))
    known = {c.id: c for c in model.connections}
    unknown = [i for i in ids if i not in known]
    if unknown:
        _fail(f"unknown connection id(s): {', '.join(unknown)} (known: {', '.join(known)})")
    return list(ids), sorted({known[i].provider for i in ids})


def _print_diff(result, as_json: bool, report: Path | None, extra: dict | None = None) -> None:
    import json

    from canonry.rollout.diff import markdown

    text = markdown(result)
    if report is not None:
        report.write_text(text)
    if as_json:
        print(json.dumps(result.as_dict() | (extra or {}), default=str))
    else:
        console.print(text, markup=False, soft_wrap=True, highlight=False)


@rollout_commands.command()
def shadow(connection: list[str] = typer.Option(None, "--connection", "-c", help="only these connections: "
                                                "their providers' lineage is built, their rows diffed"),
           select: list[str] = typer.Option(None, "--select", "-s", help="dbt selector(s) to build (with every "
                                            "parent they read)"),
           fail_on: list[str] = typer.Option(None, "--fail-on", help="METRIC=N or METRIC=N% (added, removed, "
                                             "changed, values, new_enum_values, unmapped, other) or "
                                             "TABLE.COLUMN=N: exit 1 when the diff exceeds it"),
           report: Path | None = typer.Option(None, "--report", help="also write the Markdown report here"),
           as_json: bool = typer.Option(False, "--json", help="the diff as one JSON document"),
           project_dir: Path | None = typer.Option(None, "--project-dir", help="build this dbt project instead "
                                                   "of the checkout's dbt/ (e.g. another worktree's)"),
           config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP)) -> None:
    """Build the checkout's canonical lineage from raw into canonical__shadow (no API call), then diff it
    against canonical: rows added / removed / changed, changed values by column with samples, enum shifts."""
    from canonry.errors import CanonryError
    from canonry.rollout.diff import breaches, diff, parse_threshold
    from canonry.rollout.shadow import build_shadow

    try:
        for threshold in fail_on or []:
            parse_threshold(threshold)
    except CanonryError as exc:
        _fail(str(exc), code=2)
    ids, providers = _connection_ids(config, connection)
    try:
        with console.status("dbt build into the shadow schemas …") if not as_json else _quiet():
            built = build_shadow(select=select or None, providers=providers, connections=ids,
                                 project_dir=_project(project_dir))
    except CanonryError as exc:
        _fail(str(exc))
    for node in built.result.failures():
        err_console.print(f"shadow dbt {node.resource_type} {node.name}: {node.status} {node.message or ''}",
                          markup=False, soft_wrap=True)
    if not built.tables:
        _fail(f"the shadow build produced no canonical table ({built.result.error or 'see the dbt failures above'})")
    result = diff(connections=ids, tables=built.tables)
    failed = breaches(result, fail_on or [])
    _print_diff(result, as_json, report, {"version": built.version.__dict__, "dbt_success": built.result.success,
                                          "breaches": failed})
    if not as_json:
        err_console.print(f"shadow built by {built.version.describe()}; `canonry promote` puts it live",
                          markup=False, soft_wrap=True)
    for line in failed:
        err_console.print(f"fail-on: {line}", markup=False, soft_wrap=True)
    raise typer.Exit(1 if failed or not built.result.success else 0)


def _project(path: Path | None) -> Path | None:
    if path is None:
        return None
    if not (path / "dbt_project.yml").is_file():
        _fail(f"--project-dir {path}: no dbt_project.yml there; give the directory of a copy of dbt/")
    return path.resolve()


def _quiet():
    from contextlib import nullcontext

    return nullcontext()


def _print_outcome(outcome, as_json: bool) -> None:
    import json

    if as_json:
        print(json.dumps({"action": outcome.how, "swapped": outcome.swapped, "rebuilt": outcome.rebuilt,
                          "not_restored": outcome.not_restored, "success": outcome.success,
                          "version": outcome.version.__dict__ if outcome.version else None,
                          "pinned": outcome.pinned, "unpinned": outcome.unpinned}, default=str))
    else:
        version = outcome.version.describe() if outcome.version else "no version"
        if outcome.swapped:
            console.print(f"{outcome.how}: swapped {', '.join(outcome.swapped)} ({version})", markup=False,
                          soft_wrap=True)
        if outcome.rebuilt:
            console.print(f"{outcome.how}: rebuilt from raw {', '.join(outcome.rebuilt)} ({version})",
                          markup=False, soft_wrap=True)
        for line in outcome.not_restored:
            err_console.print(f"{outcome.how}: {line}", markup=False, soft_wrap=True)
        for cid, code in outcome.pinned.items():
            console.print(f"pinned {cid} to dbt code {code[:12]}: ordinary builds with the checkout's code are "
                          f"refused for it until `canonry promote` of the checkout or `canonry rollout unpin -c "
                          f"{cid}`", markup=False, soft_wrap=True)
        if outcome.unpinned:
            console.print(f"unpinned {', '.join(outcome.unpinned)}: the checkout's code is what is live",
                          markup=False, soft_wrap=True)
    raise typer.Exit(0 if outcome.success else 1)


@rollout_commands.command()
def promote(connection: list[str] = typer.Option(None, "--connection", "-c", help="canary: promote for these "
                                                 "connections only (their rows swapped, the rest untouched)"),
            as_json: bool = typer.Option(False, "--json"),
            config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP)) -> None:
    """Swap the last shadow build into canonical (or rebuild a table live where a swap is not possible),
    recording the code version of each table in ops.rollout_versions; `--connection` promotes a canary."""
    from canonry.rollout.diff import diff, markdown
    from canonry.rollout.promote import promote as run_promote

    ids, _ = _connection_ids(config, connection)
    if ids and not as_json:  # the diff of each canary connection, before it goes live
        for cid in ids:
            console.print(markdown(diff(connections=[cid])), markup=False, soft_wrap=True, highlight=False)
    _print_outcome(run_promote(ids), as_json)


@rollout_commands.command()
def rollback(as_json: bool = typer.Option(False, "--json")) -> None:
    """Put back the version live before the last promote: rebuilt from raw with its recorded dbt project
    where it was kept, else restored from the rows kept at the promote; says what it cannot restore."""
    from canonry.rollout.promote import rollback as run_rollback

    _print_outcome(run_rollback(), as_json)


@rollout_app.command()
def unpin(connection: list[str] = typer.Option(None, "--connection", "-c", help="the connection(s) to unpin"),
          every: bool = typer.Option(False, "--all", help="every pinned connection"),
          config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP)) -> None:
    """Lift a rollout pin: ordinary builds (sync, Dagster, webhook drains, a push's gate) rebuild the
    connection's canonical rows with the checkout's dbt code again."""
    from canonry.rollout.pins import unpin as lift

    if bool(connection) == every:
        _fail("name the connection(s) to unpin with -c ID, or --all")
    ids, _ = _connection_ids(config, connection) if connection else (None, None)
    lifted = lift(ids)
    if not lifted:
        err_console.print("nothing was pinned; nothing changed", markup=False)
    for pin in lifted:
        console.print(f"unpinned {pin.connection_id} (was: {pin.describe()}); its next build uses the "
                      "checkout's dbt code", markup=False, soft_wrap=True)


@rollout_app.command("pins")
def list_pins(as_json: bool = typer.Option(False, "--json")) -> None:
    """The pinned connections: the dbt code each one's canonical rows are held at, and by what."""
    import json

    from canonry.rollout.pins import pins

    current = pins()
    if as_json:
        print(json.dumps([{"connection_id": p.connection_id, **p.version.__dict__, "action": p.action,
                           "pinned_by": p.pinned_by, "pinned_at": p.pinned_at} for p in current.values()],
                         default=str))
        return
    for pin in current.values():
        console.print(pin.describe(), markup=False, soft_wrap=True)
    if not current:
        console.print("no pinned connection: ordinary builds use the checkout's dbt code", markup=False)
