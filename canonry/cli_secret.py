"""`canonry secret set|delete|list`: the local encrypted secret store behind `local:NAME` references
(values come from stdin, a prompt or a named variable, never from argv; listings show names only)."""

from __future__ import annotations

import os
import sys

import typer

from canonry.cli_output import _fail, console

secret_app = typer.Typer(help="The local encrypted secret store (local:NAME references).", no_args_is_help=True)


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
