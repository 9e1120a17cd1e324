"""The `canonry` commands for local tools: provider sandboxes, the Dagster UI, the dbt docs of the contract,
the scaffold of a new provider (registered on the main app by canonry/cli.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from canonry.cli_output import _fail, console, err_console

local_commands = typer.Typer()
sandbox_app = typer.Typer(help="Local provider sandboxes (faithful simulators).", no_args_is_help=True)
scaffold_app = typer.Typer(help="Write the files a new part of the project needs.", no_args_is_help=True)


@scaffold_app.command("provider")
def scaffold_provider(slug: str = typer.Argument(..., help="the new provider's slug, e.g. workable"),
                      family: str = typer.Option(..., help="ats or crm: which canonical tables it feeds"),
                      title: str | None = typer.Option(None, help="the provider's name as people write it"),
                      root: Path | None = typer.Option(None, help="the repository to write into (default: this one)"),
                      ) -> None:
    """A new provider's folders: sources/<slug>/ with its ProviderSpec, dbt staging/intermediate folders and a
    test module. Next steps: docs/DEVELOPING.md, "Adding a provider"."""
    from canonry.errors import CanonryError
    from canonry.scaffold import scaffold_provider as write
    from canonry.warehouse import PROJECT_ROOT

    target = (root or PROJECT_ROOT).resolve()
    try:
        done = write(slug, family, target, title)
    except CanonryError as exc:
        _fail(str(exc), 2)
    for path in done.files:
        console.print(f"wrote {path.relative_to(target)}")
    console.print(f"next: docs/DEVELOPING.md, \"Adding a provider\" (the registry already lists {slug!r})")


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


@local_commands.command("dbt-docs")
def dbt_docs(check: bool = typer.Option(False, "--check", help="only check that the file is current (exit 1 if not)")
             ) -> None:
    """Render the canonical contract (canonry/canonical.py) into the marts' dbt properties (descriptions,
    types, classification) — dbt/models/marts/_canonical__models.yml."""
    from canonry import dbt_yml

    if check:
        if dbt_yml.CANONICAL_YML.read_text() != dbt_yml.render():
            _fail(f"{dbt_yml.CANONICAL_YML} is stale: run `canonry dbt-docs`")
        console.print(f"{dbt_yml.CANONICAL_YML} is current")
        return
    changed = dbt_yml.write()
    console.print(f"{dbt_yml.CANONICAL_YML} {'written' if changed else 'already current'}")


@local_commands.command()
def ui(port: int = typer.Option(3000, help="Dagster UI port on 127.0.0.1"),
       scale: int = typer.Option(300, help="records per object in each demo sandbox (demo only)"),
       config: Path | None = typer.Option(None, "--config", help="your connections file; without it (and "
                                                                 "without CANONRY_CONFIG) the demo's, against "
                                                                 "local sandboxes")) -> None:
    """Start the Dagster UI (dagster dev) on your connections file, or on the demo's against local sandboxes.
    Schedules, the automation and the failure-alert sensor run while it runs (dagster dev starts the daemon)."""
    import subprocess

    from canonry.warehouse import data_dir, postgres_url
    from dagster_project.instance import URL_VARIABLE, dagster_home_config, storage_url

    explicit = config or (Path(os.environ["CANONRY_CONFIG"]) if os.environ.get("CANONRY_CONFIG") else None)
    sandboxes = None
    if explicit is None:
        from canonry.demo import (
            authorise_oauth_connections,
            demo_config,
            resolved_config,
            start_demo_sandboxes,
        )

        sandboxes = start_demo_sandboxes(demo_config(require_tokens=False), scale=scale)
        resolved, config_file = resolved_config(sandboxes, require_tokens=False)
        authorise_oauth_connections(resolved, console.print)
        console.print(f"sandboxes: {', '.join(f'{p} at {s.base_url}' for p, s in sandboxes.servers.items())}")
    else:
        config_file = explicit.resolve()
        _validate_or_fail(config_file)
    home = Path(os.environ.get("DAGSTER_HOME") or data_dir() / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    # Dagster's own storage: PostgreSQL when DAGSTER_POSTGRES_URL is set (or the warehouse is PostgreSQL),
    # else SQLite files under DAGSTER_HOME.
    postgres = os.environ.get(URL_VARIABLE) or postgres_url()
    (home / "dagster.yaml").write_text(dagster_home_config(postgres))
    env = {**os.environ, "DAGSTER_HOME": str(home), "CANONRY_CONFIG": str(config_file)}
    if postgres:
        env[URL_VARIABLE] = storage_url(postgres)
    console.print(f"connections: {config_file}")
    console.print(f"Dagster instance: {home} ({'PostgreSQL' if postgres else 'SQLite'} storage)")
    console.print(f"Dagster UI: http://127.0.0.1:{port}")
    try:
        subprocess.run([sys.executable, "-m", "dagster", "dev", "-m", "dagster_project.definitions",
                        "-h", "127.0.0.1", "-p", str(port)], env=env, check=False)
    except KeyboardInterrupt:
        pass
    finally:
        if sandboxes is not None:
            sandboxes.stop()


def _validate_or_fail(path: Path) -> None:
    """Refuse to start the UI on a connections file that cannot load as a whole (one broken connection is
    fine: the UI shows its problems on its assets)."""
    from dagster_project.resources import ConnectionsFileInvalid, connections_in_location

    try:
        location = connections_in_location(path)
    except ConnectionsFileInvalid as exc:
        _fail(str(exc))
        return
    for connection_id in location.problems:
        err_console.print(f"warning: connection {connection_id} will fail until fixed: "
                          f"{location.describe_problems(connection_id)}", markup=False, soft_wrap=True)

