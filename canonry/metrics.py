"""The four outcome metrics, computed from the `ops` schema only (no provider call):

| metric | from | per |
|---|---|---|
| time to first successful sync | `ops.connections.created_at` (first seen) → first `success` in `ops.sync_runs` | connection, provider |
| sync failure rate | failed runs (`ops.sync_runs.error_endpoint`, `error_class`) / all runs | provider × endpoint × error class |
| replay success rate, time to resolution | `ops.replays`; first failed run → next successful run (`ops.sync_runs`) | connection, provider |
| query safety outcomes | `ops.query_audit` verdicts (allow / rewrite / reject) | guard kind (soql, sql) |

`since` bounds every windowed metric by time (runs, replays, audit records); time to first successful sync
is a lifetime figure and ignores it. The same figures are served as Prometheus text (`prometheus_text`,
`metrics_route` for the Starlette servers).
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from statistics import mean
from typing import Any

from canonry import ops
from canonry.errors import ConfigError
from canonry.warehouse import connect

_SINCE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
NOT_A_RUN_FAILURE = ("success",)


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """`24h`, `7d`, `30m`, `2w` or an ISO-8601 timestamp -> an aware datetime (None: no bound)."""
    if not value:
        return None
    now = now or datetime.now(UTC)
    match = _SINCE.match(value.strip())
    if match:
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"--since {value!r} is neither a duration (30m, 24h, 7d, 2w) nor an ISO-8601 time",
                          hint="e.g. `--since 24h` or `--since 2026-12-01T00:00:00+00:00`") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _rows(conn, sql: str, params: list | None = None) -> list[dict]:
    cursor = conn.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _has_table(conn, schema: str, table: str) -> bool:
    return bool(conn.execute("select count(*) from information_schema.tables where table_schema = ? "
                             "and table_name = ?", [schema, table]).fetchone()[0])


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else round(delta.total_seconds(), 3)


def _summary(values: list[float]) -> dict[str, Any]:
    return {"count": len(values), "mean_s": round(mean(values), 3) if values else None,
            "max_s": round(max(values), 3) if values else None}


def time_to_first_success(conn) -> list[dict]:
    """Per connection: from when it was first seen (created_at, else its first run) to its first success."""
    return [{**r, "seconds": _seconds(r["first_success"] - r["created_at"])
             if r["first_success"] and r["created_at"] else None}
            for r in _rows(conn, """
        select c.connection_id, c.provider, coalesce(c.created_at, min(r.started_at)) as created_at,
               min(r.finished_at) filter (where r.status = 'success') as first_success
        from ops.connections c left join ops.sync_runs r using (connection_id)
        group by c.connection_id, c.provider, c.created_at order by c.connection_id""")]


def failure_rates(conn, since: datetime | None) -> list[dict]:
    """Failed runs / all runs of the provider in the window, by the endpoint and class of the run's error."""
    window = "where started_at >= ?" if since else ""
    params = [since] if since else []
    runs = {r["provider"]: r["runs"] for r in _rows(
        conn, f"select provider, count(*) as runs from ops.sync_runs {window} group by provider", params)}
    failures = _rows(conn, f"""
        select provider, coalesce(error_endpoint, '') as endpoint, coalesce(error_class, 'unknown') as error_class,
               count(*) as failures
        from ops.sync_runs {window} {'and' if since else 'where'} status not in ('success')
        group by all order by provider, endpoint, error_class""", params)
    return [{**f, "runs": runs[f["provider"]], "rate": round(f["failures"] / runs[f["provider"]], 6)}
            for f in failures]


def request_error_rates(conn, since: datetime | None) -> list[dict]:
    """Per provider × endpoint template: API calls and the calls that failed (any attempt), from ops.api_calls."""
    window = "where r.started_at >= ?" if since else ""
    return [{**r, "rate": round(r["errors"] / r["calls"], 6) if r["calls"] else 0.0} for r in _rows(conn, f"""
        select a.provider, a.endpoint, sum(a.calls)::BIGINT as calls, sum(a.errors)::BIGINT as errors,
               sum(a.retries)::BIGINT as retries
        from ops.api_calls a left join ops.sync_runs r using (run_id) {window}
        group by all order by a.provider, a.endpoint""", [since] if since else [])]


def resolutions(conn, since: datetime | None) -> list[dict]:
    """Per connection: incidents (a failed run after a success or at the start) and how long until the next
    success. An incident still failing at the end of the history is open (no resolution time)."""
    out = []
    runs = _rows(conn, "select connection_id, provider, status, finished_at from ops.sync_runs "
                       "order by connection_id, finished_at")
    by_connection: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        by_connection[run["connection_id"]].append(run)
    for connection_id, history in sorted(by_connection.items()):
        incidents, first_failure = [], None
        for run in history:
            failed = run["status"] not in NOT_A_RUN_FAILURE
            if failed and first_failure is None:
                first_failure = run["finished_at"]
            elif not failed and first_failure is not None:
                # An incident belongs to the window when it was resolved inside it.
                if since is None or run["finished_at"] >= since:
                    incidents.append((run["finished_at"] - first_failure).total_seconds())
                first_failure = None
        out.append({"connection_id": connection_id, "provider": history[0]["provider"],
                    "resolved": len(incidents), "open": int(first_failure is not None),
                    **_summary(incidents), "durations_s": [round(s, 3) for s in incidents]})
    return out


def replay_outcomes(conn, since: datetime | None) -> list[dict]:
    window = "where r.started_at >= ?" if since else ""
    return [{**r, "success_rate": round(r["succeeded"] / r["replays"], 6)} for r in _rows(conn, f"""
        select r.connection_id, c.provider, count(*) as replays, count(*) filter (where r.success) as succeeded
        from ops.replays r left join ops.connections c using (connection_id) {window}
        group by all order by r.connection_id""", [since] if since else [])]


def guard_outcomes(conn, since: datetime | None) -> list[dict]:
    if not _has_table(conn, "ops", "query_audit"):
        return []
    # query_audit.ts is a naive UTC timestamp.
    window = "where ts >= ?" if since else ""
    params = [since.astimezone(UTC).replace(tzinfo=None)] if since else []
    rows = _rows(conn, f"select kind, verdict, count(*) as checks from ops.query_audit {window} "
                       "group by all order by kind, verdict", params)
    totals: dict[str, int] = defaultdict(int)
    for r in rows:
        totals[r["kind"]] += r["checks"]
    return [{**r, "share": round(r["checks"] / totals[r["kind"]], 6)} for r in rows]


def _per_provider(first: list[dict], resolved: list[dict], replays: list[dict]) -> dict[str, dict]:
    providers: dict[str, dict] = defaultdict(lambda: {"connections": 0, "synced": 0})
    seconds: dict[str, list[float]] = defaultdict(list)
    for r in first:
        p = providers[r["provider"]]
        p["connections"] += 1
        if r["seconds"] is not None:
            p["synced"] += 1
            seconds[r["provider"]].append(r["seconds"])
    durations: dict[str, list[float]] = defaultdict(list)
    open_incidents: dict[str, int] = defaultdict(int)
    for r in resolved:
        durations[r["provider"]] += r["durations_s"]
        open_incidents[r["provider"]] += r["open"]
    replay_totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in replays:
        replay_totals[r["provider"]][0] += r["replays"]
        replay_totals[r["provider"]][1] += r["succeeded"]
    for name, p in providers.items():
        total, ok = replay_totals.get(name, [0, 0])
        p["time_to_first_success"] = _summary(seconds[name])
        p["resolution"] = {**_summary(durations[name]), "open": open_incidents[name]}
        p["replays"] = {"replays": total, "succeeded": ok, "success_rate": round(ok / total, 6) if total else None}
    return dict(sorted(providers.items()))


def compute(since: datetime | None = None, conn=None) -> dict[str, Any]:
    """Every metric as plain data (what `canonry metrics --json` prints)."""
    own = conn is None
    conn = conn or connect(read_only=False)
    try:
        ops.ensure_tables(conn)
        first = time_to_first_success(conn)
        resolved = resolutions(conn, since)
        replays = replay_outcomes(conn, since)
        return {
            "since": since.isoformat() if since else None,
            "time_to_first_success": first,
            "failure_rates": failure_rates(conn, since),
            "request_error_rates": request_error_rates(conn, since),
            "resolution": resolved,
            "replays": replays,
            "guard": guard_outcomes(conn, since),
            "providers": _per_provider(first, resolved, replays),
        }
    finally:
        if own:
            conn.close()


# --- Prometheus ------------------------------------------------------------------------------------------

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class OpsCollector:
    """A prometheus_client collector reading `ops` on every scrape (short-lived connection)."""

    def __init__(self, since: datetime | None = None) -> None:
        self.since = since

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        data = compute(self.since)
        first = GaugeMetricFamily("canonry_time_to_first_success_seconds",
                                  "From connection creation to its first successful sync",
                                  labels=["connection_id", "provider"])
        for r in data["time_to_first_success"]:
            if r["seconds"] is not None:
                first.add_metric([r["connection_id"], r["provider"]], r["seconds"])
        failures = GaugeMetricFamily("canonry_sync_failures", "Failed sync runs",
                                     labels=["provider", "endpoint", "error_class"])
        rate = GaugeMetricFamily("canonry_sync_failure_ratio", "Failed sync runs / sync runs of the provider",
                                 labels=["provider", "endpoint", "error_class"])
        for r in data["failure_rates"]:
            labels = [r["provider"], r["endpoint"], r["error_class"]]
            failures.add_metric(labels, r["failures"])
            rate.add_metric(labels, r["rate"])
        calls = GaugeMetricFamily("canonry_api_calls", "Provider API calls", labels=["provider", "endpoint"])
        errors = GaugeMetricFamily("canonry_api_call_errors", "Provider API calls that failed",
                                   labels=["provider", "endpoint"])
        for r in data["request_error_rates"]:
            calls.add_metric([r["provider"], r["endpoint"]], r["calls"])
            errors.add_metric([r["provider"], r["endpoint"]], r["errors"])
        replays = GaugeMetricFamily("canonry_replays", "Replays run", labels=["connection_id", "outcome"])
        for r in data["replays"]:
            replays.add_metric([r["connection_id"], "success"], r["succeeded"])
            replays.add_metric([r["connection_id"], "failure"], r["replays"] - r["succeeded"])
        resolution = GaugeMetricFamily("canonry_resolution_seconds_mean",
                                       "Mean time from first failed run to next successful run",
                                       labels=["connection_id"])
        open_incidents = GaugeMetricFamily("canonry_open_incidents", "Connections whose last runs failed",
                                           labels=["connection_id"])
        for r in data["resolution"]:
            if r["mean_s"] is not None:
                resolution.add_metric([r["connection_id"]], r["mean_s"])
            open_incidents.add_metric([r["connection_id"]], r["open"])
        guard = GaugeMetricFamily("canonry_guard_checks", "Guard verdicts", labels=["kind", "verdict"])
        for r in data["guard"]:
            guard.add_metric([r["kind"], r["verdict"]], r["checks"])
        yield from (first, failures, rate, calls, errors, replays, resolution, open_incidents, guard)


def prometheus_text(since: datetime | None = None) -> bytes:
    """The metrics in the Prometheus text exposition format."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(OpsCollector(since))
    return generate_latest(registry)


def metrics_route(path: str = "/metrics"):
    """A Starlette route serving `prometheus_text()`: `Starlette(routes=[..., metrics_route()])`."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request):
        body = await run_in_threadpool(prometheus_text)
        return Response(body, media_type=PROMETHEUS_CONTENT_TYPE)

    return Route(path, endpoint, methods=["GET"])
