"""Rate-budget benchmark: many threads of one connection against a HubSpot sandbox that enforces
HubSpot's burst limit (100 requests per rolling 10 s, answered 429 beyond it).

Measures, after a warm-up window: 429s (target: zero) and throughput as a share of the limit
(target: at least 90%). The budget starts from the published limit (the provider's SPEC.rate_limit,
canonry.http_budget.published_limit) and is corrected by the sandbox's `X-HubSpot-RateLimit-*` headers.

    PYTHONPATH=. .venv/bin/python -m benchmarks.rate_budget [--seconds 40] [--threads 8]
"""

from __future__ import annotations

import argparse
import threading
import time

import canonry  # noqa: F401  (telemetry off)
from canonry.http import ProviderSession
from canonry.http_budget import budget_for
from canonry.http_telemetry import Telemetry
from canonry.runtime import Credential, bearer_auth
from canonry.sandbox import DEFAULT_TOKENS, start_sandbox

LIMIT, INTERVAL = 100, 10.0


def run(seconds: float, threads: int, warmup: float) -> dict:
    server = start_sandbox("hubspot", scale=1000)
    credential = Credential("api_key", "bench", lambda: DEFAULT_TOKENS["hubspot"])
    telemetry = Telemetry()
    url = f"{server.base_url}/crm/v3/objects/contacts"
    events: list[tuple[float, int]] = []
    lock = threading.Lock()
    start = time.monotonic()
    stop = start + seconds

    def worker(n: int) -> None:
        session = ProviderSession("hubspot", "bench", auth=bearer_auth(credential), telemetry=telemetry, seed=n)
        original = session.session.send

        def send(prepared, **kwargs):
            response = original(prepared, **kwargs)
            with lock:
                events.append((time.monotonic() - start, response.status_code))
            return response

        session.session.send = send  # observe every attempt, 429s included
        while time.monotonic() < stop:
            session.get_json(url, params={"limit": 1})

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    server.stop()
    measured = [(t, s) for t, s in events if warmup <= t < seconds]
    ok = sum(1 for _, s in measured if s == 200)
    window = seconds - warmup
    budget = budget_for("hubspot", "bench")
    return {
        "limit_per_s": LIMIT / INTERVAL, "threads": threads, "seconds": seconds, "warmup_s": warmup,
        "requests_total": len(events), "429_total": sum(1 for _, s in events if s == 429),
        "429_after_warmup": sum(1 for _, s in measured if s == 429),
        "ok_after_warmup": ok, "throughput_per_s": round(ok / window, 2),
        "share_of_limit": round(ok / window / (LIMIT / INTERVAL), 3),
        "budget_limit_seen": budget.limit, "budget_interval_seen": budget.interval,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=INTERVAL)
    args = parser.parse_args()
    figures = run(args.seconds, args.threads, args.warmup)
    for key, value in figures.items():
        print(f"{key:>22}: {value}")
    verdict = figures["429_after_warmup"] == 0 and figures["share_of_limit"] >= 0.9
    print(f"{'verdict':>22}: {'PASS' if verdict else 'FAIL'} (zero 429s after warm-up, >= 90% of the limit)")
    raise SystemExit(0 if verdict else 1)


if __name__ == "__main__":
    main()
