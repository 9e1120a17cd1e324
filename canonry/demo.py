"""`canonry demo`: local provider sandboxes -> DuckDB -> canonical tables -> validation, with a summary.

The sandboxes run in-process, one per connection of the demo's connections file (assembled from each provider's
`canonry/sandbox/<slug>/demo-connection.yml` by `canonry.demo_connections`). The first run
is a full sync; later runs are incremental, after the sandboxes simulate a little activity.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from canonry import providers
from canonry.config import ConnectionsFile
from canonry.demo_connections import write_demo_connections
from canonry.sandbox import DEFAULT_TOKENS, start_sandbox
from canonry.sandbox.engine import SandboxServer
from canonry.validation import load_connections

DEMO_SEED = 7


def demo_file() -> Path:
    """The demo's connections file, assembled from the providers' own and written into the data dir."""
    from canonry.warehouse import data_dir

    return write_demo_connections(data_dir())


def demo_secret_name(provider: str, kind: str = "token") -> str:
    """The local secret store name of a demo sandbox credential (`local:<name>` in the demo file)."""
    return f"demo-{provider}-{kind}"


def demo_environment() -> None:
    """The sandboxes' credentials (sandbox-only values) into the local encrypted secret store, behind the
    demo file's `local:` references: they outlive the demo's process, so `canonry validate`, `push
    --dry-run` and the rest work on the demo's connections afterwards, as for a user's own."""
    import importlib

    from canonry.secrets import LocalStore, store_secret

    store = LocalStore()
    wanted = {demo_secret_name(provider): token for provider, token in DEFAULT_TOKENS.items()}
    # The OAuth apps' client secrets: for every provider whose demo connection names one (the demo file
    # says which connections are oauth2), the secret its sandbox registers.
    demo_text = demo_file().read_text()
    for provider in providers.slugs():
        if f"local:{demo_secret_name(provider, 'client-secret')}" in demo_text:
            module = importlib.import_module(f"canonry.sandbox.{provider}")
            wanted[demo_secret_name(provider, "client-secret")] = module.DEFAULT_CLIENT_SECRET
    for name, value in wanted.items():
        if store.get(name) != value:
            store_secret(f"local:{name}", value)


def authorise_oauth_connections(config: ConnectionsFile, progress: Callable[[str], None]) -> None:
    """Run the real authorization-code + PKCE flow for every oauth2 connection: the demo's sandboxes are
    new on every run, so grants from an earlier run are unknown to them (as after a revocation). The
    sandbox's consent page approves at once; a scripted browser follows its redirect to our callback."""
    import requests

    from canonry.oauth import connect

    for connection in config.connections:
        if connection.auth.kind != "oauth2":
            continue
        progress(f"authorising {connection.id} (OAuth authorization code + PKCE against the sandbox) …")
        connect(connection, browser=lambda url: requests.get(url, timeout=15).raise_for_status(), timeout=30)


@dataclass
class DemoSandboxes:
    servers: dict[str, SandboxServer] = field(default_factory=dict)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def start_demo_sandboxes(config: ConnectionsFile, scale: int, seed: int = DEMO_SEED) -> DemoSandboxes:
    """One sandbox per provider, each on a free loopback port (two demos, or a demo and the tests, never
    collide); `resolved_config` then points the connections at them."""
    sandboxes = DemoSandboxes()
    for connection in config.connections:
        if connection.provider in sandboxes.servers:
            continue
        token = DEFAULT_TOKENS.get(connection.provider, f"sandbox-{connection.provider}-token")
        sandboxes.servers[connection.provider] = start_sandbox(connection.provider, seed=seed, scale=scale,
                                                               token=token)
    return sandboxes


def resolved_config(sandboxes: DemoSandboxes, source: Path | None = None, require_tokens: bool = True
                    ) -> tuple[ConnectionsFile, Path]:
    """The demo file with each provider's placeholder address (`http://127.0.0.1:<port>` in the file)
    replaced by its running sandbox's; written under the data dir (Dagster's code server reads it)."""
    from canonry.config import parse_file
    from canonry.warehouse import data_dir

    source = source or demo_file()
    model, problems, _, _ = parse_file(source)
    if model is None:
        raise RuntimeError("; ".join(p.render() for p in problems))
    text = source.read_text()
    for connection in model.connections:
        placeholder = urlsplit(connection.base_url or "")
        server = sandboxes.servers.get(connection.provider)
        if server and placeholder.netloc:
            text = text.replace(f"{placeholder.scheme}://{placeholder.netloc}", server.base_url)
    target = data_dir() / "demo-connections.resolved.yml"
    target.write_text(text)
    return load_connections(target, require_tokens=require_tokens), target


def simulate_activity(sandboxes: DemoSandboxes, changes: int, seed: int) -> int:
    """Create, update and delete a few records in every sandbox object that supports it."""
    import random

    rng = random.Random(seed)
    touched = 0
    for server in sandboxes.servers.values():
        simulator = server.simulator
        for name in list(simulator.collections):
            # People who use the tools (users, owners) are edited, not deleted: the demo's service users
            # (Greenhouse's `sub`) must survive.
            deletes = 0 if name.lower() in ("users", "user", "owners") else max(1, changes // 3)
            for action, count in (("create", changes), ("update", changes), ("delete", deletes)):
                if count == 0:
                    continue
                try:
                    touched += len(simulator.mutate(name, action, count, rng, None))
                except (KeyError, ValueError, IndexError, NotImplementedError):
                    break  # reference data with a fixed set of rows (stages, pipelines) is not mutated
    return touched


def demo_config(path: Path | None = None, require_tokens: bool = True) -> ConnectionsFile:
    demo_environment()
    return load_connections(path or demo_file(), require_tokens=require_tokens)


@dataclass
class DemoReport:
    syncs: list = field(default_factory=list)
    dbt: object = None
    gate: object = None
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    activity: int = 0


def _ran_before() -> bool:
    """On PostgreSQL (no file to look for): a sync was recorded in ops.sync_runs."""
    from canonry.warehouse import connect

    conn = connect()
    try:
        return bool(conn.execute("select to_regclass('ops.sync_runs') is not null").fetchone()[0])
    finally:
        conn.close()


PREVIEW_SYNC = "hubspot_contacts_from_hires"   # ATS hires -> HubSpot contacts (dry run)
PUSH_SYNC = "hubspot_deals"                      # canonical opportunities -> HubSpot deals (real push)


def reverse_etl_finale(config: ConnectionsFile, report, progress: Callable[[str], None]) -> None:
    """A dry-run preview of one shipped sync and a real push of another into the HubSpot sandbox, gated by
    this run's dbt build (tests included) and GE gate over every canonical table."""
    from canonry.reverse_etl import GateVerdict, push

    if report.dbt is None or not report.dbt.success or report.gate is None or not report.gate.success:
        progress("reverse ETL: not pushed — the dbt build or the validation gate failed")
        return
    preview = push(PREVIEW_SYNC, None, connections=config, dry_run=True, sample_size=3)
    for c in preview.connections:
        progress(f"reverse ETL preview ({PREVIEW_SYNC}, dry run): {c.connection_id} would insert {c.inserts}, "
                 f"update {c.updates}, delete {c.deletes}, unchanged {c.unchanged}")
    for row in preview.sample:
        changes = ", ".join(f"{k}: {v['before']!r} -> {v['after']!r}" for k, v in row["changes"].items())
        progress(f"  {row['operation']} {row['record_key'][:12]}: {changes}")
    verdict = GateVerdict("rev_hubspot__deals", True, [], sorted(report.rows), "demo", source="demo")
    result = push(PUSH_SYNC, verdict, connections=config)
    for c in result.connections:
        progress(f"reverse ETL push ({PUSH_SYNC}): {c.connection_id} wrote {c.written} deal(s) "
                 f"({c.updates} updated, {c.unchanged} unchanged, {c.rejected} rejected) in {c.calls} API call(s)"
                 + (f" — {c.error}" if c.error else ""))


def run_demo(scale: int = 300, seed: int = DEMO_SEED, activity: int = 5,
             progress: Callable[[str], None] = print) -> DemoReport:
    from canonry.pipeline import sync
    from canonry.transform import build
    from canonry.warehouse import connect, postgres_url, warehouse_path
    from expectations.gate import run_gate, tables_for_connections

    report = DemoReport()
    first_run = not (_ran_before() if postgres_url() else warehouse_path().exists())
    sandboxes = start_demo_sandboxes(demo_config(require_tokens=False), scale=scale, seed=seed)
    try:
        config, _ = resolved_config(sandboxes, require_tokens=False)
        authorise_oauth_connections(config, progress)
        config, _ = resolved_config(sandboxes)
        if not first_run and activity:
            report.activity = simulate_activity(sandboxes, activity, seed=int(time.time()))
            progress(f"sandboxes simulated {report.activity} record changes since the last run")
        started = time.perf_counter()
        for connection in config.connections:
            progress(f"syncing {connection.id} ({connection.provider}) …")
            result = sync(connection)
            report.syncs.append(result)
            state = "ok" if result.status == "success" else f"FAILED: {result.error}"
            progress(f"  {connection.id}: {sum(result.records.values())} records, {result.calls} API calls, "
                     f"{result.duration_s:.1f}s — {state}")
        report.seconds["extract+load"] = time.perf_counter() - started

        progress("building canonical tables with dbt …")
        started = time.perf_counter()
        report.dbt = build()
        report.seconds["dbt build"] = time.perf_counter() - started

        progress("running the Great Expectations gate …")
        started = time.perf_counter()
        tables = tables_for_connections(config.connections)
        report.gate = run_gate(tables)
        report.seconds["validation"] = time.perf_counter() - started

        conn = connect()
        try:
            for table in tables:
                report.rows[table] = conn.execute(
                    f"select count(*) from canonical.{table} where not is_deleted").fetchone()[0]
        finally:
            conn.close()
        started = time.perf_counter()
        reverse_etl_finale(config, report, progress)
        report.seconds["reverse ETL"] = time.perf_counter() - started
    finally:
        sandboxes.stop()
    return report
