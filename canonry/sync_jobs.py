"""`canonry sync --jobs N`: several connections synced at once, one process per connection.

Each connection runs as its own `canonry sync -c <id> --no-transform --json` child process: its own dlt
pipeline and state, its own HTTP session and rate budget (a budget is per (provider, connection), and a
connection is in exactly one process, so no budget is ever split or doubled), its own `ops.sync_runs` row
with its pid. At most N children run at a time; the parent prints each connection's outcome as it ends,
then builds the affected dbt lineage and runs the gate once. A child that fails, or dies, fails only its
own connection: the others' loads are committed by their own processes.

The warehouse decides what "at once" means:
* PostgreSQL takes many writers: children extract and load concurrently.
* DuckDB takes one writer process: children extract concurrently and load one at a time, each load step
  waiting for the warehouse writer lock (canonry/warehouse_lock.py) with its "waiting for the warehouse
  lock held by sync of X since …" message — the rule every concurrent DuckDB writer follows.

The children join the parent's trace (W3C `traceparent` handed over in `CANONRY_TRACEPARENT`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager, nullcontext
from pathlib import Path

from canonry.errors import ErrorClass

TRACEPARENT_ENV = "CANONRY_TRACEPARENT"
STDERR_TAIL_LINES = 5   # what a child that died without its JSON document leaves in the parent's message


def default_jobs(selected: int) -> int:
    """The default `--jobs`: on PostgreSQL the core count (bounded by the connections to sync); on DuckDB 1
    (one process: nothing to gain from children whose loads wait for each other, unless asked)."""
    from canonry.warehouse import postgres_url

    if not postgres_url():
        return 1
    return max(1, min(os.cpu_count() or 1, selected))


def child_command(connection_id: str, config: Path | None, full_refresh: bool) -> list[str]:
    """The child process of one connection: the same CLI, one connection, no dbt (the parent builds once)."""
    command = [sys.executable, "-m", "canonry.cli", "sync", "--connection", connection_id, "--no-transform",
               "--json", "--jobs", "1"]
    if config is not None:
        command += ["--config", str(config)]
    if full_refresh:
        command.append("--full-refresh")
    return command


def _child_environment() -> dict[str, str]:
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    environment = dict(os.environ)
    if "traceparent" in carrier:
        environment[TRACEPARENT_ENV] = carrier["traceparent"]
    return environment


def _failed(connection, message: str) -> dict:
    """The result of a child that gave none (it died, or never started): `transient` — its committed
    checkpoints are kept, its run row is marked killed by the next run, and running it again continues."""
    return {"connection_id": connection.id, "provider": connection.provider, "status": "failed", "records": {},
            "calls": 0, "retries": 0, "throttled": 0, "duration_s": 0.0, "checkpoints": 0, "stalled": False,
            "error": {"class": str(ErrorClass.TRANSIENT), "message": message}}


def run_child(connection, config: Path | None, full_refresh: bool, environment: dict[str, str]) -> dict:
    """Sync one connection in a child process; its `sync --json` result (or a `failed` one saying why the
    child gave none: its exit code and the last lines of its stderr). The child's stderr (already redacted by
    its console: warehouse-lock waits, warnings) is passed on line by line, prefixed with the connection id."""
    from canonry.cli_output import err_console
    from canonry.secrets import redact

    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as stdout:
        process = subprocess.Popen(child_command(connection.id, config, full_refresh), env=environment,
                                   stdout=stdout, stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        for line in process.stderr:
            tail.append(line.rstrip())
            err_console.print(f"[{connection.id}] {line.rstrip()}", markup=False, highlight=False, soft_wrap=True)
        returncode = process.wait()
        stdout.seek(0)
        output = stdout.read()
    try:
        [result] = json.loads(output.strip().splitlines()[-1])["syncs"]
        return result
    except (IndexError, ValueError, KeyError, TypeError):
        said = " | ".join(tail) or "no output"
        return _failed(connection, redact(f"sync process exited with code {returncode} without a result: {said}"))


def run_parallel(connections: Sequence, *, jobs: int, config: Path | None, full_refresh: bool,
                 on_done: Callable[[dict, int, int], None]) -> list[dict]:
    """Sync `connections` in child processes, at most `jobs` at a time. `on_done(result, finished, total)`
    is called in the parent as each one ends. Results come back in the connections' order."""
    environment = _child_environment()
    results: dict[str, dict] = {}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="canonry-sync") as pool:
        futures = {pool.submit(run_child, c, config, full_refresh, environment): c for c in connections}
        for future in as_completed(futures):
            connection = futures[future]
            try:
                result = future.result()
            except OSError as exc:  # the child could not even start (no such executable, out of processes)
                result = _failed(connection, f"could not start a sync process: {exc}")
            results[connection.id] = result
            on_done(result, len(results), len(connections))
    return [results[c.id] for c in connections]


def print_result(result: dict) -> None:
    """One line per finished connection: its counts, or its error and what it committed before it."""
    from canonry.cli_output import console, err_console

    error = result["error"]
    if error:
        stalled = ", stalled: same failure as the last run, no progress" if result.get("stalled") else ""
        err_console.print(f"{result['connection_id']}: {error['message']} [{result['status']}, "
                          f"{result.get('checkpoints', 0)} checkpoint(s) committed{stalled}]",
                          markup=False, soft_wrap=True)
    else:
        console.print(f"{result['connection_id']}: {sum(result['records'].values())} records, "
                      f"{result['calls']} API calls, {result['duration_s']:.1f}s")


def sync_connections(selected: Sequence, *, jobs: int, config: Path | None, full_refresh: bool,
                     as_json: bool) -> list[dict]:
    """Sync the selected connections (results as `sync --json` documents them): one after the other in this
    process when `jobs` is 1 (or there is one connection), else in child processes, `jobs` at a time."""
    from canonry.cli_output import console, sync_progress, sync_result_json
    from canonry.pipeline import sync as sync_connection

    show = (lambda result: None) if as_json else print_result
    if jobs > 1 and len(selected) > 1:
        spinner = console.status(f"syncing {len(selected)} connections, {jobs} at a time …") \
            if not as_json and console.is_terminal else nullcontext()
        with spinner as status:
            def on_done(result: dict, finished: int, total: int) -> None:
                show(result)
                if status is not None:
                    status.update(f"syncing {total} connections, {jobs} at a time: {finished}/{total} done …")

            return run_parallel(selected, jobs=jobs, config=config, full_refresh=full_refresh, on_done=on_done)
    results = []
    for connection in selected:
        with sync_progress(console, connection.id, enabled=not as_json) as on_start:
            result = sync_result_json(sync_connection(connection, full_refresh=full_refresh, on_start=on_start))
        show(result)
        results.append(result)
    return results


@contextmanager
def attach_parent_trace() -> Iterator[None]:
    """In a child: continue the parent's trace when `CANONRY_TRACEPARENT` says which."""
    traceparent = os.environ.get(TRACEPARENT_ENV)
    if not traceparent:
        yield
        return
    from opentelemetry import context
    from opentelemetry.propagate import extract

    token = context.attach(extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        context.detach(token)
