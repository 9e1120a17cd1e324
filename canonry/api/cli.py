"""`canonry api ...`: serve the read API, manage its keys, write its OpenAPI document.

The key string is printed once (stdout, nothing else on that line); only its hash is kept.
"""

from __future__ import annotations

import json
import sys

import typer

from canonry.api.keys import DEFAULT_RATE_LIMIT, ApiKeyError, create_key, load_keys, revoke_key
from canonry.api.resources import DEFAULT_PORT, SCOPES

api_app = typer.Typer(help="The read API over the canonical tables (per-tenant keys).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: create (printed once), list, revoke.", no_args_is_help=True)
api_app.add_typer(keys_app, name="keys")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@api_app.command()
def serve(host: str = typer.Option("127.0.0.1", help="interface to listen on"),
          port: int = typer.Option(DEFAULT_PORT, help="TCP port"),
          access_log: bool = typer.Option(True, help="log one line per request (paths only, never keys)")) -> None:
    """Serve /v1/<family>/<resource> and /openapi.json until interrupted."""
    import uvicorn

    from canonry.api.app import create_app

    typer.echo(f"Canonry read API on http://{host}:{port} (OpenAPI: http://{host}:{port}/openapi.json)", err=True)
    uvicorn.run(create_app(), host=host, port=port, log_level="warning", access_log=access_log)


@api_app.command()
def openapi(write: bool = typer.Option(False, "--write", help="write docs/openapi.json"),
            check: bool = typer.Option(False, "--check", help="exit 1 when docs/openapi.json is stale")) -> None:
    """Print the OpenAPI 3.1 document generated from the canonical contract (or write / check the docs copy)."""
    from canonry.api.openapi import DOCUMENT_PATH, rendered
    from canonry.api.openapi import write as write_document

    if check:
        current = DOCUMENT_PATH.exists() and DOCUMENT_PATH.read_text() == rendered()
        if not current:
            _fail(f"{DOCUMENT_PATH} is stale: run `canonry api openapi --write` and commit it")
        typer.echo(f"{DOCUMENT_PATH} is current")
    elif write:
        typer.echo(f"wrote {write_document()}")
    else:
        sys.stdout.write(rendered())


@keys_app.command("create")
def keys_create(tenant: str = typer.Option(..., "--tenant", help="the tenant whose rows the key reads"),
                scope: list[str] = typer.Option(None, "--scope", help=f"one of {', '.join(SCOPES)} "
                                                                       "(repeatable; default all)"),
                rate_limit: int = typer.Option(DEFAULT_RATE_LIMIT, help="requests per minute"),
                label: str = typer.Option("", help="a note to tell keys apart")) -> None:
    """Create a key for one tenant. The key is printed once; keep it (only its hash is stored)."""
    try:
        key, entry = create_key(tenant, scope or None, rate_limit, label)
    except ApiKeyError as exc:
        _fail(str(exc))
    typer.echo(f"key {entry.key_id} for tenant {entry.tenant} ({', '.join(entry.scopes)}, "
               f"{entry.rate_limit}/min) — shown once:", err=True)
    typer.echo(key)


@keys_app.command("list")
def keys_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Key ids, tenants, scopes and states (never the keys)."""
    rows = [{"key_id": k.key_id, "tenant": k.tenant, "scopes": k.scopes, "rate_limit": k.rate_limit,
             "created_at": k.created_at, "revoked_at": k.revoked_at, "label": k.label} for k in load_keys().values()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        typer.echo(f"{row['key_id']}  {row['tenant']}  {','.join(row['scopes'])}  {row['rate_limit']}/min  {state}"
                   f"  {row['label']}")


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: the next request with it gets 401."""
    try:
        entry = revoke_key(key_id)
    except ApiKeyError as exc:
        _fail(str(exc))
    typer.echo(f"revoked {entry.key_id} (tenant {entry.tenant})")
