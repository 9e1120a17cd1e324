"""Kill test: a sync subprocess SIGKILLed at random points (mid-extract, mid-normalize, mid-load, between
checkpoints), then re-run, ends equal to the sandbox's truth: nothing lost, nothing duplicated. The
sandbox runs in this test process, so it outlives every killed sync."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import yaml

from canonry.providers import slugs, spec
from canonry.sandbox import SIMULATORS
from canonry.warehouse import PROJECT_ROOT
from tests.helpers import mutate, query, request_log, set_faults
from tests.reliability.providers import assert_equals_truth, build_canonical, case

FULL_KILLS, INCREMENTAL_KILLS = 4, 2
# One provider per family in `make test` (each ~1.5 min: 6 syncs killed, then re-run): HubSpot (CRM, per-page
# checkpoints) and Greenhouse (ATS, key scans). `CANONRY_KILL_PROVIDERS=all` runs every provider (≈10 min).
KILL_PROVIDERS = (list(slugs()) if os.environ.get("CANONRY_KILL_PROVIDERS") == "all"
                  else [p for p in os.environ.get("CANONRY_KILL_PROVIDERS", "hubspot,greenhouse").split(",")
                        if p in slugs()])


def _start_sync(config, connection_id: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "CANONRY_CHECKPOINT_PAGES": "3"}
    return subprocess.Popen([sys.executable, "-m", "canonry.cli", "sync", "--config", str(config),
                             "-c", connection_id, "--no-transform"], env=env, cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _api_requests(server) -> int:
    return sum(1 for r in request_log(server) if not r["path"].startswith("/_sandbox"))


@pytest.mark.parametrize("provider", KILL_PROVIDERS)
def test_sigkill_at_random_points_then_rerun_equals_truth(provider, data_dir, tmp_path, sandbox_factory,
                                                          connect_sandbox, monkeypatch):
    assert provider in SIMULATORS, f"{provider} has a source but no sandbox"
    row = case(provider)
    rng = random.Random(f"kill-{provider}")
    server = sandbox_factory(provider, scale=max(row.scale, 600))
    connection = row.connect(server, connect_sandbox, monkeypatch, row.connection_id or f"{provider}-kill",
                              **row.connection_overrides)
    config = tmp_path / "connections.yml"
    set_faults(server, latency_ms=25)  # widen the windows between the steps a kill can land in

    killed_while_running = 0

    def kill_at_random_points(kills: int) -> None:
        nonlocal killed_while_running
        for _ in range(kills):
            seen = _api_requests(server)
            process = _start_sync(config, connection.id)
            # Kill after a random number of new API requests plus a random delay: lands in extraction,
            # or (with the delay) in normalisation, loading, or between two checkpoints.
            target = seen + rng.randint(1, 10)
            deadline = time.monotonic() + 60
            while _api_requests(server) < target and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 1.2))
            if process.poll() is None:
                killed_while_running += 1
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)

    def run_to_completion() -> None:
        finished = _start_sync(config, connection.id)
        output, _ = finished.communicate(timeout=240)
        assert finished.returncode == 0, output

    # The full sync, killed at random points, then finished; the world moves on; the incremental sync,
    # killed at random points, then finished.
    kill_at_random_points(FULL_KILLS)
    run_to_completion()
    for object_name, actions in row.mutations.items():
        mutate(server, object_name, seed=row.seed, **actions)
    kill_at_random_points(INCREMENTAL_KILLS)
    run_to_completion()
    assert killed_while_running >= 5, f"only {killed_while_running} kills landed while a sync was running"

    build_canonical(provider)
    assert_equals_truth(server, provider, connection.id)
    runs = query("select status from ops.sync_runs where connection_id = ? order by finished_at",
                 [connection.id])
    statuses = [r["status"] for r in runs]
    # Every run is recorded: killed ones as `killed` (a kill before the run's first write leaves none).
    assert statuses.count("success") >= 2 and set(statuses) == {"success", "killed"}, statuses


# -- SIGKILL while the sandboxes mutate: all six providers, one sync process per kill point ------------------
CHECKPOINT_PAGES = 1   # every page its own checkpoint: a kill can only ever lose the page in flight
# Requests that carry a position (the page after another one): a re-run asking one again re-fetches a page.
POSITION_MARKS = ("after=", "cursor=", "offset=", "page_after=", "start=", "\"cursor\"", "/query/")


def _log_since(server, seen: int) -> list[dict]:
    return [r for r in request_log(server)[seen:] if not r["path"].startswith("/_sandbox")]


def _page_key(r: dict) -> tuple:
    return r["method"], r["path"], r["query"], r.get("body")


def _positioned(r: dict) -> bool:
    text = f"{r['path']}?{r['query']} {r.get('body') or ''}"
    return r["status"] == 200 and any(mark in text for mark in POSITION_MARKS) and "start=0&" not in text + "&"


def _dangling_foreign_keys(providers: list[str]) -> dict[str, int]:
    """Canonical FK values of these providers that resolve to no row (dbt's own relationship tests, read
    from the generated contract)."""
    contract = yaml.safe_load((PROJECT_ROOT / "dbt/models/marts/_canonical__models.yml").read_text())
    marks = ", ".join("?" for _ in providers)
    dangling = {}
    for model in contract["models"]:
        for column in model["columns"]:
            for test in column.get("data_tests") or []:
                if not isinstance(test, dict) or "relationships" not in test:
                    continue
                target = test["relationships"]["arguments"]["to"].split("'")[1]
                field_name = test["relationships"]["arguments"]["field"]
                rows = query(f"select provider, count(*) as n from canonical.{model['name']} as c "
                             f"where c.provider in ({marks}) and c.{column['name']} is not null and not exists "
                             f"(select 1 from canonical.{target} as t where t.{field_name} = c.{column['name']}) "
                             f"group by provider", providers)
                for row in rows:
                    dangling[f"{row['provider']} {model['name']}.{column['name']}"] = row["n"]
    return dangling


def test_sigkill_while_the_sandboxes_mutate_then_rerun_equals_truth(data_dir, tmp_path, sandbox_factory,
                                                                     connect_sandbox, monkeypatch):
    """Six providers in one connections file; each kill point is one `canonry sync` (connections one after
    the other) SIGKILLed while one provider (in turn) is mid-pass, after every sandbox created, updated and
    deleted records under it. Then one run to completion: canonical = truth, FKs resolve, no duplicate, and
    what each kill re-fetched stays within the checkpoint in flight."""
    providers = list(slugs())
    rng = random.Random("kill-mutating")
    servers, connections = {}, {}
    for provider in providers:
        row = case(provider)
        servers[provider] = sandbox_factory(provider, scale=row.scale)
        connections[provider] = row.connect(servers[provider], connect_sandbox, monkeypatch,
                                            row.connection_id or f"{provider}-killmut", **row.connection_overrides)
    config = tmp_path / "connections.yml"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "CANONRY_CHECKPOINT_PAGES": str(CHECKPOINT_PAGES)}
    command = [sys.executable, "-m", "canonry.cli", "sync", "--config", str(config), "--no-transform"]

    def committed(provider: str) -> bool:
        """Whether the provider's pipeline has loaded a checkpoint (its first pass has begun for good)."""
        name = "canonry_" + connections[provider].id.replace("-", "_")
        return any((data_dir / "dlt" / name / "load" / "loaded").glob("*"))

    def mutate_all(round_number: int) -> None:
        """Create, update and delete in every provider whose first pass has a loaded checkpoint. Not before:
        a record deleted before a provider's first checkpoint was never visible to Canonry (its first pass
        starts again after the kill, when the record is gone): nothing to compare."""
        for provider in providers:
            if not committed(provider):
                continue
            row = case(provider)
            for object_name, actions in row.mutations.items():
                small = {action: max(1, count // 2) for action, count in actions.items()}
                mutate(servers[provider], object_name, seed=row.seed * 100 + round_number, **small)

    killed_runs: dict[str, tuple[int, int]] = {}   # provider -> its killed run's slice of the request log
    killed = 0
    for round_number, target in enumerate(providers):
        before = len(request_log(servers[target]))
        process = subprocess.Popen([*command, "-c", connections[target].id], env=env, cwd=PROJECT_ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill once the target provider made a random number of requests; mutate everything half-way there.
        goal, mutated = rng.randint(3, 8), False
        deadline = time.monotonic() + 90
        while process.poll() is None and time.monotonic() < deadline:
            made = len(_log_since(servers[target], before))
            if not mutated and made >= goal // 2:
                mutate_all(round_number)   # while the target syncs
                mutated = True
            if made >= goal:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.3))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait(timeout=30)
        mutate_all(len(providers) + round_number)   # and between its killed run and the next one
        killed_runs[target] = (before, len(request_log(servers[target])))

    final_start = {p: len(request_log(servers[p])) for p in providers}
    finished = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert killed >= 5, f"only {killed} kills landed while a sync was running"

    # Re-fetched pages: positioned pages the killed run asked for that the run after it asked for again.
    refetched, bound = {}, {}
    for provider in providers:
        log = request_log(servers[provider])
        first, last = killed_runs[provider]
        killed_pages = {_page_key(r) for r in log[first:last] if _positioned(r)}
        refetched[provider] = len(killed_pages & {_page_key(r) for r in log[final_start[provider]:] if _positioned(r)})
        bound[provider] = len(spec(provider).resumable) * CHECKPOINT_PAGES
    print(f"positioned pages re-fetched after the kill, per provider (bound: resumable objects x "
          f"{CHECKPOINT_PAGES} page): {refetched}")
    over = {p: n for p, n in refetched.items() if n > bound[p]}
    assert not over, f"re-fetched beyond the checkpoints in flight: {over} (bounds {bound})"

    build_canonical(*providers)
    for provider in providers:
        assert_equals_truth(servers[provider], provider, connections[provider].id)
    assert _dangling_foreign_keys(providers) == {}
