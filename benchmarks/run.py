"""Canonry benchmarks: throughput, API efficiency, incremental cost, memory; against a baseline and a peer.

    make bench        # python -m benchmarks.run --quick   (N = 10k, 3 repetitions; a few minutes)
    make bench-full   # python -m benchmarks.run --full    (N = 10k, 100k, 1M)
    python -m benchmarks.run --sizes 10000,100000 --reps 3 [--no-peer] [--baseline-max 100000]

For every N (records per CRM object: contacts, companies, deals) and repetition, a fresh HubSpot sandbox
is started in its own process (`canonry sandbox serve hubspot --scale N --no-rate-limits --page-cache
--port P`) and every measured job runs in its own fresh process (`benchmarks/worker.py`), so peak RSS is
per job:

1. serve     the sandbox's own serving rate (every list page, bodies read, not parsed): cold, then warm
2. baseline  a plain dlt pipeline, default settings, over the same list pages
3. full      Canonry: sync (extract, normalise, load) -> dbt build of HubSpot's lineage -> GE gate
4. mutate    1% of every CRM object changes (0.8% updated, 0.1% created, 0.1% deleted)
5. incr      Canonry incremental: sync -> dbt build (lineage) -> gate; 5b: again, dbt on the whole project
6. peer      tap-hubspot 4.5.0 (its own venv, benchmarks/.venv-peer) on contacts, full then incremental,
             beside Canonry syncing contacts alone
API calls come from the sandbox's request log (`/_sandbox/requests`). Results: benchmarks/results/
(`bench-<timestamp>.json` and `.md`, plus `latest.*`). Figures are medians over the repetitions.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import requests

from canonry.peers import PeerInstallError, ensure_peer_venv

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PEER_VENV = ROOT / "benchmarks" / ".venv-peer"
PEER_PACKAGE = "tap-hubspot==4.5.0"
CORE_OBJECTS = ("contacts", "companies", "deals", "owners", "pipelines")
LIST_PAGE, SEARCH_PAGE, ASSOC_BATCH, OWNERS_PAGE = 100, 200, 1000, 500
CHANGE_SHARE = {"update": 0.008, "create": 0.001, "delete": 0.001}
PEER_MAX = 100_000           # tap-hubspot above this takes longer than the rest of a repetition
WHOLE_PROJECT_MAX = 100_000  # the extra whole-project incremental step (5b) only up to this N


def log(message: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(RUNTIME__DLTHUB_TELEMETRY="false", DBT_SEND_ANONYMOUS_USAGE_STATS="false",
               GX_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    env.pop("CANONRY_WAREHOUSE", None)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sandbox:
    """`canonry sandbox serve hubspot` in its own process (it must not share the pipeline's GIL)."""

    def __init__(self, scale: int, rate_limits: bool = False) -> None:
        self.scale, self.port = scale, free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "canonry.cli", "sandbox", "serve", "hubspot", "--scale", str(scale),
                        *([] if rate_limits else ["--no-rate-limits"]), "--page-cache", "--port", str(self.port)]
        self.process = subprocess.Popen(self.command, env=child_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(self.base_url + "/_sandbox/info", timeout=2).raise_for_status()
                return
            except requests.RequestException:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sandbox did not start: {self.process.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.2)

    def info(self) -> dict:
        return requests.get(self.base_url + "/_sandbox/info", timeout=60).json()

    def clear_log(self) -> None:
        requests.delete(self.base_url + "/_sandbox/requests", timeout=60).raise_for_status()

    def api_requests(self) -> list[dict]:
        rows = requests.get(self.base_url + "/_sandbox/requests", timeout=300).json()["requests"]
        return [r for r in rows if not r["path"].startswith("/_sandbox") and "oauth" not in r["path"]]

    def mutate(self, object_name: str, **actions) -> dict:
        response = requests.post(self.base_url + "/_sandbox/mutate", json={"object": object_name, **actions},
                                 timeout=600)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_worker(job: str, base_url: str, data_dir: Path, *extra: str) -> dict:
    command = [sys.executable, "-m", "benchmarks.worker", job, "--base-url", base_url, "--data-dir", str(data_dir),
               *extra]
    started = time.perf_counter()
    done = subprocess.run(command, env=child_env(), cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"worker {job} failed ({done.returncode}):\n{done.stderr[-4000:]}\n{done.stdout[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = round(wall, 3)
    return result


# -- minimum API calls ---------------------------------------------------------------------------------
def pages(count: int, size: int) -> int:
    """Calls to list `count` records `size` at a time: an empty listing still costs one call."""
    return max(1, math.ceil(count / size))


def crm_objects(objects: list[str]) -> list[str]:
    from sources.hubspot.settings import CRM_OBJECTS

    return [o for o in objects if o in CRM_OBJECTS]


def association_targets(name: str) -> int:
    from sources.hubspot.settings import CRM_OBJECTS

    return len(CRM_OBJECTS[name].associations)


def minimum_full_calls(info: dict, deleted: dict[str, int], objects: list[str]) -> int:
    """Every alive record once at the list page maximum (associations inline), every archived record
    once, owners (alive + archived listings) and the one pipelines call."""
    alive = info["objects"]
    calls = sum(pages(alive[o], LIST_PAGE) + pages(deleted.get(o, 0), LIST_PAGE) for o in crm_objects(objects))
    calls += pages(alive["owners"], OWNERS_PAGE) + 1 if "owners" in objects else 0
    return calls + (1 if "pipelines" in objects else 0)


def minimum_incremental_calls(changed: dict[str, int], deleted: dict[str, int], owners: int,
                              objects: list[str]) -> int:
    """Changed records through search at its page maximum, their associations in batches of 1,000 per
    target, the archived listing (it has no time filter), owners and pipelines."""
    calls = 0
    for o in crm_objects(objects):
        calls += pages(changed[o], SEARCH_PAGE)
        calls += association_targets(o) * (math.ceil(changed[o] / ASSOC_BATCH) if changed[o] else 0)
        calls += pages(deleted.get(o, 0), LIST_PAGE)
    calls += pages(owners, OWNERS_PAGE) + 1 if "owners" in objects else 0
    return calls + (1 if "pipelines" in objects else 0)


def mutate_one_percent(sandbox: Sandbox, scale: int, seed: int, objects: list[str],
                       round_: int = 0) -> tuple[dict[str, int], dict[str, int]]:
    """0.8% updated, 0.1% created, 0.1% deleted per synced CRM object; returns (changed alive, deleted)."""
    from canonry.sandbox.hubspot import OBJECT_TYPES

    rng = random.Random(seed)
    changed, deleted = {}, {}
    for name in crm_objects(objects):
        offset = OBJECT_TYPES[name][0]
        counts = {action: max(1, round(scale * share)) for action, share in CHANGE_SHARE.items()}
        # Round 0 changes even indexes, round 1 odd ones: a record deleted in round 0 is never picked again.
        picked = rng.sample(range(round_ % 2, scale, 2), counts["update"] + counts["delete"])
        ids = [str(offset + i + 1) for i in picked]
        sandbox.mutate(name, update=ids[:counts["update"]], delete=ids[counts["update"]:],
                       create=counts["create"], seed=seed)
        changed[name] = counts["update"] + counts["create"]
        deleted[name] = counts["delete"]
    return changed, deleted


# -- the peer ------------------------------------------------------------------------------------------
def ensure_peer() -> tuple[Path | None, str]:
    """The peer's own venv (git-ignored), created from PyPI on first use; never Canonry's venv."""
    try:
        if not (PEER_VENV / ".canonry-requirements").exists():
            log(f"installing {PEER_PACKAGE} into {PEER_VENV.relative_to(ROOT)}")
        return ensure_peer_venv("tap-hubspot", (PEER_PACKAGE,), directory=PEER_VENV), "ok"
    except PeerInstallError as exc:
        return None, str(exc)


def run_peer(python: Path, sandbox: Sandbox, work: Path, state_in: str, label: str) -> dict:
    state_out = work / f"peer-state-{label}.json"
    command = [str(python), str(ROOT / "benchmarks" / "peer_tap_hubspot.py"), sandbox.base_url,
               "sandbox-hubspot-private-app-token", state_in, str(state_out), "contacts"]
    sandbox.clear_log()
    # stderr to a file: the tap logs a metric line per request, which would fill a pipe and block it.
    stderr_file = open(work / f"peer-{label}.log", "w+b")  # noqa: SIM115 - closed below
    process = psutil.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=stderr_file)
    started = time.perf_counter()
    records, peak = 0, 0
    # Count RECORD messages as a Singer target would receive them (the tap writes, we read and drop).
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(b'{"type": "RECORD"') or line.startswith(b'{"type":"RECORD"'):
            records += 1
        if records % 2000 == 0:
            try:
                peak = max(peak, process.memory_info().rss)
            except psutil.Error:
                pass
    process.wait()
    stderr_file.seek(0)
    stderr = stderr_file.read().decode(errors="replace")
    stderr_file.close()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"tap-hubspot failed:\n{stderr[-3000:]}")
    calls = len(sandbox.api_requests())
    return {"job": "peer", "sync_s": round(elapsed, 4), "records": records, "calls": calls,
            "peak_rss_mb": round(peak / 2**20, 1), "state": str(state_out)}


# -- one size ------------------------------------------------------------------------------------------
def records_total(result: dict) -> int:
    return sum(result["records"].values())


def one_rep(scale: int, rep: int, work: Path, peer_python: Path | None, with_baseline: bool,
            objects: list[str], whole_project: bool = True) -> dict:
    out: dict = {"scale": scale, "rep": rep}
    selection = ("--objects", ",".join(objects))
    sandbox = Sandbox(scale)
    try:
        out["sandbox_command"] = " ".join(sandbox.command[1:])
        # 1. the sandbox alone
        out["serve"] = run_worker("serve", sandbox.base_url, work / "serve", *selection)
        # 2. baseline
        if with_baseline:
            sandbox.clear_log()
            out["baseline"] = run_worker("baseline", sandbox.base_url, work / "baseline", *selection)
            out["baseline"]["api_calls"] = len(sandbox.api_requests())
        # 3. Canonry full
        info = sandbox.info()
        sandbox.clear_log()
        data = work / "canonry"
        full = run_worker("canonry", sandbox.base_url, data, *selection)
        full["api_calls"] = len(sandbox.api_requests())
        full["min_calls"] = minimum_full_calls(info, {}, objects)
        out["full"] = full
        # 4-5. 1% changes, then incremental
        changed, deleted = mutate_one_percent(sandbox, scale, 1000 + rep, objects)
        time.sleep(1)  # the changes' timestamps are now; the source's settle window is 5 s behind "now"
        sandbox.clear_log()
        incr = run_worker("canonry", sandbox.base_url, data, *selection)
        incr["api_calls"] = len(sandbox.api_requests())
        incr["min_calls"] = minimum_incremental_calls(changed, deleted, info["objects"]["owners"], objects)
        incr["changed"], incr["deleted"] = changed, deleted
        out["incremental"] = incr
        # 5b. another 1% and an incremental run whose dbt build is the whole project (every provider's
        # models: what `canonry demo` builds), for comparison with the lineage build above
        try:
            if not whole_project:
                raise RuntimeError(f"skipped above N = {WHOLE_PROJECT_MAX:,}")
            mutate_one_percent(sandbox, scale, 3000 + rep, objects, round_=1)
            time.sleep(1)
            sandbox.clear_log()
            whole = run_worker("canonry", sandbox.base_url, data, *selection, "--transform-select", "all")
            whole["api_calls"] = len(sandbox.api_requests())
            out["incremental_whole"] = whole
        except (RuntimeError, requests.RequestException) as exc:
            log(f"  incremental (whole project) failed: {exc}")
            out["incremental_whole_error"] = str(exc)[-2000:]
        # 6. the peer beside Canonry on contacts alone
        if peer_python is not None:
            peer_full = run_peer(peer_python, sandbox, work, "-", "full")
            sandbox.mutate("contacts", update=max(1, round(scale * 0.01)), seed=2000 + rep)
            peer_incr = run_peer(peer_python, sandbox, work, peer_full.pop("state"), "incremental")
            peer_incr.pop("state")
            sandbox.clear_log()
            solo = run_worker("canonry", sandbox.base_url, work / "canonry-contacts", "--objects", "contacts",
                              "--sync-only")
            solo["api_calls"] = len(sandbox.api_requests())
            out["peer"] = {"full": peer_full, "incremental": peer_incr, "canonry_contacts": solo}
    finally:
        sandbox.stop()
    return out


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 4) if values else None


def summarise(reps: list[dict]) -> dict:
    """Medians over the repetitions of every figure the table shows."""
    def m(fn):
        values = []
        for r in reps:
            try:
                values.append(fn(r))
            except (KeyError, TypeError, ZeroDivisionError):
                pass
        return median(values)

    def e2e(r, key="full"):
        x = r[key]
        return x["sync_s"] + x["transform_s"] + x["validate_s"]

    s: dict = {"scale": reps[0]["scale"], "reps": len(reps)}
    s["records"] = m(lambda r: records_total(r["full"]))
    s["serve_rps"] = m(lambda r: r["serve"]["records"]["served"] / r["serve"]["sync_s"])
    s["serve_cold_rps"] = m(lambda r: r["serve"]["passes"]["cold"]["records"] / r["serve"]["passes"]["cold"]["s"])
    s["full_e2e_s"] = m(e2e)
    s["full_sync_s"] = m(lambda r: r["full"]["sync_s"])
    for phase in ("extract", "normalize", "load"):
        s[f"full_{phase}_s"] = m(lambda r, p=phase: r["full"]["steps"][p])
    s["full_transform_s"] = m(lambda r: r["full"]["transform_s"])
    s["full_validate_s"] = m(lambda r: r["full"]["validate_s"])
    s["e2e_rps"] = m(lambda r: records_total(r["full"]) / e2e(r))
    s["el_rps"] = m(lambda r: records_total(r["full"]) / r["full"]["sync_s"])
    for phase in ("extract", "normalize", "load"):
        s[f"{phase}_rps"] = m(lambda r, p=phase: records_total(r["full"]) / r["full"]["steps"][p])
    s["transform_rps"] = m(lambda r: records_total(r["full"]) / r["full"]["transform_s"])
    s["validate_rps"] = m(lambda r: records_total(r["full"]) / r["full"]["validate_s"])
    s["baseline_s"] = m(lambda r: r["baseline"]["sync_s"])
    s["baseline_rps"] = m(lambda r: records_total(r["baseline"]) / r["baseline"]["sync_s"])
    for phase in ("extract", "normalize", "load"):
        s[f"baseline_{phase}_s"] = m(lambda r, p=phase: r["baseline"]["steps"][p])
    # Ratios are taken within each repetition (same machine state), then the median.
    s["ratio_e2e_vs_baseline"] = m(lambda r: (records_total(r["full"]) / e2e(r))
                                   / (records_total(r["baseline"]) / r["baseline"]["sync_s"]))
    s["ratio_el_vs_baseline"] = m(lambda r: (records_total(r["full"]) / r["full"]["sync_s"])
                                  / (records_total(r["baseline"]) / r["baseline"]["sync_s"]))
    s["full_calls"] = m(lambda r: r["full"]["api_calls"])
    s["full_min_calls"] = m(lambda r: r["full"]["min_calls"])
    s["full_calls_ratio"] = m(lambda r: r["full"]["api_calls"] / r["full"]["min_calls"])
    s["baseline_calls"] = m(lambda r: r["baseline"]["api_calls"])
    s["incr_records"] = m(lambda r: records_total(r["incremental"]))
    s["incr_calls"] = m(lambda r: r["incremental"]["api_calls"])
    s["incr_min_calls"] = m(lambda r: r["incremental"]["min_calls"])
    s["incr_calls_ratio"] = m(lambda r: r["incremental"]["api_calls"] / r["incremental"]["min_calls"])
    s["incr_sync_s"] = m(lambda r: r["incremental"]["sync_s"])
    s["incr_transform_s"] = m(lambda r: r["incremental"]["transform_s"])
    s["incr_validate_s"] = m(lambda r: r["incremental"]["validate_s"])
    s["incr_cost"] = m(lambda r: (r["incremental"]["sync_s"] + r["incremental"]["transform_s"])
                       / (r["full"]["sync_s"] + r["full"]["transform_s"]))
    s["incr_cost_with_gate"] = m(lambda r: e2e(r, "incremental") / e2e(r))
    s["whole_transform_s"] = m(lambda r: r["incremental_whole"]["transform_s"])
    s["whole_cost"] = m(lambda r: (r["incremental_whole"]["sync_s"] + r["incremental_whole"]["transform_s"])
                          / (r["full"]["sync_s"] + r["full"]["transform_s"]))
    s["sync_peak_rss_mb"] = m(lambda r: r["full"]["sync_peak_rss_mb"])
    s["transform_peak_rss_mb"] = m(lambda r: r["full"]["transform_peak_rss_mb"])
    s["validate_peak_rss_mb"] = m(lambda r: r["full"]["validate_peak_rss_mb"])
    s["baseline_peak_rss_mb"] = m(lambda r: r["baseline"]["sync_peak_rss_mb"])
    s["gate_success"] = all(r["full"].get("gate_success") and r["incremental"].get("gate_success") for r in reps)
    if any("peer" in r for r in reps):
        s["peer_full_s"] = m(lambda r: r["peer"]["full"]["sync_s"])
        s["peer_full_records"] = m(lambda r: r["peer"]["full"]["records"])
        s["peer_full_calls"] = m(lambda r: r["peer"]["full"]["calls"])
        s["peer_incr_s"] = m(lambda r: r["peer"]["incremental"]["sync_s"])
        s["peer_incr_calls"] = m(lambda r: r["peer"]["incremental"]["calls"])
        s["peer_peak_rss_mb"] = m(lambda r: r["peer"]["full"]["peak_rss_mb"])
        s["canonry_contacts_s"] = m(lambda r: r["peer"]["canonry_contacts"]["sync_s"])
        s["canonry_contacts_calls"] = m(lambda r: r["peer"]["canonry_contacts"]["api_calls"])
        s["canonry_contacts_records"] = m(lambda r: records_total(r["peer"]["canonry_contacts"]))
        s["canonry_contacts_extract_s"] = m(lambda r: r["peer"]["canonry_contacts"]["steps"]["extract"])
        s["ratio_canonry_vs_peer"] = m(lambda r: r["peer"]["full"]["sync_s"] / r["peer"]["canonry_contacts"]["sync_s"])
    return s


# -- report --------------------------------------------------------------------------------------------
def machine_facts() -> dict:
    import importlib.metadata as md

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = None, None
    return {
        "cpu_logical": os.cpu_count(), "cpu_physical": psutil.cpu_count(logical=False),
        "cpu_model": _cpu_model(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(), "platform": platform.platform(),
        "versions": {n: version(n) for n in ("dlt", "duckdb", "dbt-core", "dbt-duckdb", "great_expectations",
                                              "pyarrow", "orjson", "uvicorn", "starlette")},
        "git_commit": commit, "git_dirty": dirty,
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def fmt(value, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and digits == 0:
        return f"{value:,.0f}{suffix}"
    return f"{value:,.{digits}f}{suffix}"


def markdown(report: dict) -> str:
    facts, rows = report["machine"], report["summary"]
    lines = [f"# Canonry benchmarks — {report['started_at']}", "",
             f"Command: `{report['command']}`  ", f"Machine: {facts['cpu_logical']} logical cores "
             f"({facts['cpu_model']}), {facts['memory_gb']} GB RAM, load average at start "
             f"{facts['load_average_at_start']}, at end {report.get('load_average_at_end')}  ",
             f"Software: Python {facts['python']}, " + ", ".join(f"{k} {v}" for k, v in facts["versions"].items() if v)
             + "  ", f"Commit: {facts['git_commit']}{' (dirty)' if facts['git_dirty'] else ''}; "
             f"medians of the repetitions (per N: {report['reps']}); total {report['elapsed_s']:.0f} s.", "",
             f"Objects synced: {', '.join(report['objects'])}. N = records per CRM object; records = all raw "
             "rows of the run (N per CRM object + owners + pipelines). Sandbox: `"
             + (report["sandbox_command"] or "") + "` (own process).", ""]
    lines += ["## Throughput (full sync, records/s)", "",
              "| N | records | end-to-end | extract-load | extract | normalise | load | transform (dbt) | "
              "validate (GE) | baseline (plain dlt) | **Canonry / baseline** (e2e · EL) | sandbox alone (warm · cold) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in rows:
        lines.append(
            f"| {s['scale']:,} | {fmt(s['records'])} | {fmt(s['e2e_rps'])} | {fmt(s['el_rps'])} | "
            f"{fmt(s['extract_rps'])} | {fmt(s['normalize_rps'])} | {fmt(s['load_rps'])} | "
            f"{fmt(s['transform_rps'])} | {fmt(s['validate_rps'])} | {fmt(s['baseline_rps'])} | "
            f"**{fmt(s['ratio_e2e_vs_baseline'], 2, '×')}** · {fmt(s['ratio_el_vs_baseline'], 2, '×')} | "
            f"{fmt(s['serve_rps'])} · {fmt(s.get('serve_cold_rps'))} |")
    lines += ["", "Seconds (median):", "",
              "| N | e2e | sync | extract | normalise | load | transform | validate | baseline (extract/normalise/load) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for s in rows:
        lines.append(
            f"| {s['scale']:,} | {fmt(s['full_e2e_s'], 2)} | {fmt(s['full_sync_s'], 2)} | {fmt(s['full_extract_s'], 2)} | "
            f"{fmt(s['full_normalize_s'], 2)} | {fmt(s['full_load_s'], 2)} | {fmt(s['full_transform_s'], 2)} | "
            f"{fmt(s['full_validate_s'], 2)} | {fmt(s['baseline_s'], 2)} ({fmt(s['baseline_extract_s'], 2)}/"
            f"{fmt(s['baseline_normalize_s'], 2)}/{fmt(s['baseline_load_s'], 2)}) |")
    lines += ["", "## API efficiency, incremental cost, memory", "",
              "| N | full calls / min | incr. records | incr. calls / min | incr. sync s | incr. transform s | "
              "incr. gate s | **incr. cost** (sync+transform) | with gate | incr. cost, dbt on the whole project "
              "(dbt s) | peak RSS sync / dbt / gate MB | baseline RSS MB | gate |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in rows:
        lines.append(
            f"| {s['scale']:,} | {fmt(s['full_calls'])} / {fmt(s['full_min_calls'])} = "
            f"**{fmt(s['full_calls_ratio'], 2)}** | {fmt(s['incr_records'])} | {fmt(s['incr_calls'])} / "
            f"{fmt(s['incr_min_calls'])} = **{fmt(s['incr_calls_ratio'], 2)}** | {fmt(s['incr_sync_s'], 2)} | "
            f"{fmt(s['incr_transform_s'], 2)} | {fmt(s['incr_validate_s'], 2)} | "
            f"**{fmt(s['incr_cost'] * 100 if s['incr_cost'] is not None else None, 1, '%')}** | "
            f"{fmt(s['incr_cost_with_gate'] * 100 if s['incr_cost_with_gate'] is not None else None, 1, '%')} | "
            f"{fmt(s['whole_cost'] * 100 if s['whole_cost'] is not None else None, 1, '%')} "
            f"({fmt(s['whole_transform_s'], 2)}) | "
            f"{fmt(s['sync_peak_rss_mb'])} / {fmt(s['transform_peak_rss_mb'])} / {fmt(s['validate_peak_rss_mb'])} | "
            f"{fmt(s['baseline_peak_rss_mb'])} | {'pass' if s['gate_success'] else 'FAIL'} |")
    if any("peer_full_s" in s for s in rows):
        lines += ["", "## Peer: tap-hubspot 4.5.0 (Singer, PyPI) on contacts, same sandbox", "",
                  "| N | tap-hubspot full s (records, calls) | Canonry contacts sync s (records, calls) | "
                  "**tap / Canonry time** | tap incremental calls (1% changed) | tap peak RSS MB |",
                  "|---|---|---|---|---|---|"]
        for s in rows:
            if "peer_full_s" not in s:
                continue
            lines.append(
                f"| {s['scale']:,} | {fmt(s['peer_full_s'], 2)} ({fmt(s['peer_full_records'])}, "
                f"{fmt(s['peer_full_calls'])}) | {fmt(s['canonry_contacts_s'], 2)} "
                f"({fmt(s['canonry_contacts_records'])}, {fmt(s['canonry_contacts_calls'])}) | "
                f"**{fmt(s['ratio_canonry_vs_peer'], 2, '×')}** | {fmt(s['peer_incr_calls'])} | "
                f"{fmt(s['peer_peak_rss_mb'])} |")
        lines += ["", "tap-hubspot writes Singer messages to stdout (read and dropped here: no loading); Canonry's "
                  "figure includes loading into DuckDB."]
    if report.get("peer_status") != "ok":
        lines += ["", f"Peer not run: {report.get('peer_status')}"]
    lines += ["", "Definitions: minimum calls, phases and ratios are described in benchmarks/README.md.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="N = 10k, 3 repetitions (default)")
    group.add_argument("--full", action="store_true", help="N = 10k, 100k, 1M, 3 repetitions")
    parser.add_argument("--sizes", help="comma-separated N (records per object), overrides --quick/--full")
    parser.add_argument("--reps", type=int, help="repetitions per size (default 3)")
    parser.add_argument("--baseline-max", type=int, default=None,
                        help="largest N the baseline runs at (default 100k: ~300k records at ~1,000 records/s "
                             "is ~5 minutes per repetition)")
    parser.add_argument("--objects", default=",".join(CORE_OBJECTS),
                        help="HubSpot objects to sync (default: the core CRM set; 'all' for every object, "
                             "engagements included)")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    # A terminated run still stops its sandbox and removes its work directory (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else (
        [10_000, 100_000, 1_000_000] if args.full else [10_000])
    # Repetitions: 3 up to N = 100k, 1 above (a 1M repetition is ~20 minutes), unless --reps says.
    def reps_for(scale: int) -> int:
        return args.reps or (3 if scale <= 100_000 else 1)
    if args.objects == "all":
        from sources.hubspot.settings import OBJECTS

        objects = list(OBJECTS)
    else:
        objects = args.objects.split(",")
    baseline_max = args.baseline_max if args.baseline_max is not None else 100_000
    command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    clock = time.perf_counter()
    peer_python, peer_status = (None, "skipped (--no-peer)") if args.no_peer else ensure_peer()
    if peer_python is None:
        log(f"peer: {peer_status}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    report: dict = {"command": command, "started_at": started_at, "machine": machine_facts(),
                    "reps": {str(n): reps_for(n) for n in sizes},
                    "sizes": sizes, "peer": PEER_PACKAGE, "peer_status": peer_status, "runs": [], "summary": [],
                    "sandbox_command": None, "objects": objects}
    work_root = Path(tempfile.mkdtemp(prefix="canonry-bench-"))
    try:
        for scale in sizes:
            runs = []
            for rep in range(reps_for(scale)):
                log(f"N={scale:,} repetition {rep + 1}/{reps_for(scale)}")
                work = work_root / f"n{scale}-r{rep}"
                run = one_rep(scale, rep, work, peer_python if scale <= PEER_MAX else None, scale <= baseline_max,
                              objects, whole_project=scale <= WHOLE_PROJECT_MAX)
                report["sandbox_command"] = run.pop("sandbox_command")
                runs.append(run)
                f = run["full"]
                log(f"  full {records_total(f):,} records: sync {f['sync_s']:.1f}s {f['steps']} "
                    f"dbt {f['transform_s']:.1f}s gate {f['validate_s']:.1f}s; calls {f['api_calls']}/{f['min_calls']}; "
                    f"incr sync {run['incremental']['sync_s']:.1f}s dbt {run['incremental']['transform_s']:.1f}s "
                    f"calls {run['incremental']['api_calls']}/{run['incremental']['min_calls']}"
                    + (f"; baseline {run['baseline']['sync_s']:.1f}s" if "baseline" in run else ""))
                # Partial results after every repetition (a long --full run keeps what it measured).
                (RESULTS / "partial.json").write_text(json.dumps({**report, "runs": report["runs"] + runs},
                                                                 indent=2, default=str))
            report["runs"] += runs
            report["summary"].append(summarise(runs))
    finally:
        if not args.keep:
            shutil.rmtree(work_root, ignore_errors=True)
        else:
            log(f"work directory kept: {work_root}")
    report["elapsed_s"] = round(time.perf_counter() - clock, 1)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = markdown(report)
    for name in (f"bench-{stamp}", "latest"):
        (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2, default=str))
        (RESULTS / f"{name}.md").write_text(text)
    print(text)
    log(f"results: {RESULTS.relative_to(ROOT)}/bench-{stamp}.{{json,md}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
