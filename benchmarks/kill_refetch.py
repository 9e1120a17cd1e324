"""Pages re-fetched after a SIGKILL: checkpoints bounded by pages only (the behaviour before
`CANONRY_CHECKPOINT_SECONDS`) vs the default (500 pages or 20 s of fetching per checkpoint).

HubSpot sandbox at its published rate limit (100 requests / 10 s), contacts + companies + deals; a
`canonry sync` subprocess is SIGKILLed once `--kill-at` object pages were fetched, then re-run to
completion; a page is re-fetched when the re-run requests the same path and query again.

    python -m benchmarks.kill_refetch [--scale 20000] [--kill-at 400]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl

import requests
import yaml

from canonry.sandbox import DEFAULT_TOKENS, start_sandbox
from canonry.warehouse import PROJECT_ROOT

PAGES_ONLY = "1000000"   # seconds: the time bound never binds


def object_pages(server) -> list[tuple[str, tuple]]:
    log = requests.get(f"{server.base_url}/_sandbox/requests", timeout=30).json()["requests"]
    return [(r["path"], tuple(sorted(parse_qsl(r["query"])))) for r in log
            if r["path"].startswith("/crm/v3/objects/") and r["status"] == 200]


def measure(checkpoint_seconds: str, scale: int, kill_at: int) -> dict:
    server = start_sandbox("hubspot", scale=scale)
    data = Path(tempfile.mkdtemp(prefix="canonry-kill-"))
    config = data / "connections.yml"
    config.write_text(yaml.safe_dump({"connections": [{
        "id": "hubspot-kill", "tenant": "bench", "provider": "hubspot",
        "auth": {"kind": "api_key", "secret": "env:CANONRY_BENCH_HUBSPOT_TOKEN"}, "base_url": server.base_url,
        "objects": ["contacts", "companies", "deals"]}]}))
    env = {**os.environ, "CANONRY_DATA_DIR": str(data), "CANONRY_BENCH_HUBSPOT_TOKEN": DEFAULT_TOKENS["hubspot"],
           "CANONRY_CHECKPOINT_SECONDS": checkpoint_seconds, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("CANONRY_WAREHOUSE", None)
    command = [sys.executable, "-m", "canonry.cli", "sync", "--config", str(config), "--no-transform"]
    try:
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        while len(object_pages(server)) < kill_at and process.poll() is None:
            time.sleep(0.05)
        killed_after = time.monotonic() - started
        process.send_signal(signal.SIGKILL)
        process.wait()
        before = object_pages(server)
        subprocess.run(command, env=env, cwd=PROJECT_ROOT, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        after = object_pages(server)[len(before):]
    finally:
        server.stop()
    return {"killed_after_s": round(killed_after, 1), "fetched": len(before),
            "refetched": len(set(before) & set(after))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=20000, help="records per object in the sandbox")
    parser.add_argument("--kill-at", type=int, default=400, help="object pages fetched before the kill")
    args = parser.parse_args(argv)
    for label, seconds in (("pages only (500 pages per checkpoint)", PAGES_ONLY),
                           ("default (500 pages or 20 s per checkpoint)", "20")):
        figures = measure(seconds, args.scale, args.kill_at)
        print(f"{label}: killed after {figures['killed_after_s']} s, {figures['fetched']} pages fetched, "
              f"{figures['refetched']} re-fetched by the next run", flush=True)


if __name__ == "__main__":
    main()
