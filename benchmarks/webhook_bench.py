"""Webhook intake benchmark: `canonry webhooks serve` (a subprocess) on loopback, fresh data dir.

    python -m benchmarks.webhook_bench [--events 10000] [--clients 16]

1. HubSpot: `events` v3-signed events in batches of 100; Greenhouse: `events` single signed events.
   Accepted events/s (wall clock, all clients) and p50/p99 acknowledgement latency per request.
2. Kill mid-burst: Greenhouse events from every client, SIGKILL of the server after a third of them;
   after a restart every event that got a 2xx must be in the journal (lost = acknowledged but absent).

Clients are threads of this process (they share the 2 cores with the server, as on one machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

from sources.greenhouse.helpers import sign_webhook as greenhouse_sign
from sources.hubspot.helpers import sign_webhook_v3 as hubspot_sign

HUBSPOT_SECRET = "bench-hubspot-client-secret"
GREENHOUSE_SECRET = "bench-greenhouse-webhook-secret"


def _config(root: Path) -> Path:
    connections = [
        {"id": "hubspot-bench", "tenant": "bench", "provider": "hubspot",
         "auth": {"kind": "api_key", "secret": "env:BENCH_HUBSPOT_TOKEN"}, "base_url": "http://127.0.0.1:9",
         "webhooks": {"secret": "env:BENCH_HUBSPOT_WEBHOOK"}},
        {"id": "greenhouse-bench", "tenant": "bench", "provider": "greenhouse",
         "auth": {"kind": "client_credentials", "secret": "env:BENCH_GREENHOUSE_TOKEN"},
         "base_url": "http://127.0.0.1:9",
         "webhooks": {"secret": "env:BENCH_GREENHOUSE_WEBHOOK"}},
    ]
    path = root / "connections.yml"
    path.write_text(yaml.safe_dump({"connections": connections}, sort_keys=False))
    return path


def _start(config: Path, env: dict[str, str]):
    import subprocess

    log = open(config.parent / "serve.log", "a")  # noqa: SIM115 - the server's whole life
    process = subprocess.Popen([sys.executable, "-m", "canonry.cli", "webhooks", "serve", "--port", "0",
                                "--config", str(config)], stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        process.kill()
        raise SystemExit(f"webhooks serve did not start: {line!r}; see {log.name}")
    return process, line.split()[-1]


_local = threading.local()


def _session() -> requests.Session:
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def _hubspot_request(url: str, first_id: int, size: int) -> tuple[bytes, dict]:
    now = int(time.time() * 1000)
    events = [{"eventId": first_id + i, "subscriptionId": 1, "portalId": 1, "appId": 1, "occurredAt": now,
               "subscriptionType": "contact.propertyChange", "attemptNumber": 0, "objectId": first_id + i,
               "propertyName": "firstname", "propertyValue": "x", "changeSource": "CRM"} for i in range(size)]
    body = json.dumps(events, separators=(",", ":")).encode()
    stamp = str(now)
    return body, {"Content-Type": "application/json", "X-HubSpot-Signature-v3": hubspot_sign(
        HUBSPOT_SECRET, "POST", url, body, stamp), "X-HubSpot-Request-Timestamp": stamp}


def _greenhouse_request(event_id: str) -> tuple[bytes, dict]:
    body = json.dumps({"action": "delete_candidate", "payload": {"person": {"id": 1, "first_name": "x"}}},
                      separators=(",", ":")).encode()
    return body, {"Content-Type": "application/json", "Signature": greenhouse_sign(GREENHOUSE_SECRET, body),
                  "Greenhouse-Event-ID": event_id}


def _post(url: str, body: bytes, headers: dict) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        status = _session().post(url, data=body, headers=headers, timeout=30).status_code
    except requests.RequestException:
        status = 0
    return status, time.perf_counter() - started


def _burst(requests_: list[tuple[str, bytes, dict]], clients: int, events_per_request: int) -> dict:
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda r: _post(*r), requests_))
    wall = time.perf_counter() - started
    latencies = sorted(latency for _, latency in results)
    ok = sum(1 for status, _ in results if status == 200)
    return {"requests": len(results), "accepted_requests": ok, "events_accepted": ok * events_per_request,
            "seconds": round(wall, 2), "events_per_s": round(ok * events_per_request / wall),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1)}


def _journal_ids(data_dir: Path) -> set[str]:
    db = sqlite3.connect(data_dir / "webhooks" / "intake.sqlite")
    try:
        return {row[0] for row in db.execute("select event_id from events where connection_id = 'greenhouse-bench'")}
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="canonry-webhook-bench-"))
    env = {**os.environ, "CANONRY_DATA_DIR": str(root / "data"), "CANONRY_KEY_FILE": str(root / "keys" / "k"),
           "BENCH_HUBSPOT_TOKEN": "x" * 16,
           "BENCH_GREENHOUSE_TOKEN": json.dumps({"client_id": "bench", "client_secret": "x" * 16}),
           "BENCH_HUBSPOT_WEBHOOK": HUBSPOT_SECRET, "BENCH_GREENHOUSE_WEBHOOK": GREENHOUSE_SECRET}
    config = _config(root)
    report: dict = {"events": args.events, "clients": args.clients, "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()}
    process, base = _start(config, env)
    try:
        hub = f"{base}/hooks/hubspot-bench"
        batches = [(hub, *_hubspot_request(hub, 1 + i * 100, 100)) for i in range(args.events // 100)]
        report["hubspot_batches_of_100"] = _burst(batches, args.clients, 100)
        gh = f"{base}/hooks/greenhouse-bench"
        singles = [(gh, *_greenhouse_request(str(uuid.uuid4()))) for _ in range(args.events)]
        report["greenhouse_single_events"] = _burst(singles, args.clients, 1)
    finally:
        process.kill()
        process.wait()

    # Kill mid-burst: which events were acknowledged, and are they all in the journal after a restart?
    process, base = _start(config, env)
    gh = f"{base}/hooks/greenhouse-bench"
    ids = [f"kill-{uuid.uuid4()}" for _ in range(args.events)]
    acknowledged: list[str] = []

    def send(event_id: str) -> None:
        status, _ = _post(gh, *_greenhouse_request(event_id))
        if status == 200:
            acknowledged.append(event_id)

    killer = threading.Timer(0, lambda: None)
    with ThreadPoolExecutor(args.clients) as pool:
        futures = [pool.submit(send, i) for i in ids]
        while len(acknowledged) < args.events // 3:
            time.sleep(0.005)
        process.kill()
        process.wait()
        for future in futures:
            future.result()
    killer.cancel()
    process, _ = _start(config, env)
    process.kill()
    process.wait()
    journaled = _journal_ids(root / "data")
    report["kill_mid_burst"] = {"sent": len(ids), "acknowledged": len(acknowledged),
                                "journaled": len(journaled & set(ids)),
                                "lost": len(set(acknowledged) - journaled)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
