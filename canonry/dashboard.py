"""The health page: one self-contained HTML file (inline CSS and SVG, no script, no CDN, no web font) built
from `ops` — per connection its state, freshness against its SLO, last error class with its runbook, API calls
and records of its last runs as small charts; open alerts; the guard's verdicts. Cards stack on a phone.

`canonry dashboard --out F` writes it; `--serve` serves it fresh on every request (with /metrics and the
runbooks) on 127.0.0.1.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from canonry.errors import POLICIES, ErrorClass, runbook
from canonry.warehouse import PROJECT_ROOT, connect

RECENT_RUNS = 20
STATE_TONE = {"active": "ok", "healthy": "ok", "degraded": "warn", "stale": "warn", "failing": "bad",
              "needs_reauth": "bad", "misconfigured": "bad", "disconnected": "off"}


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def sparkline(values: list[float], label: str, width: int = 140, height: int = 28) -> str:
    """A small inline SVG bar chart (oldest left), with an accessible label."""
    if not values:
        return f'<span class="muted">no {_esc(label)} yet</span>'
    top = max(values) or 1
    bar = width / len(values)
    bars = "".join(
        f'<rect x="{i * bar + 1:.1f}" y="{height - max(1.0, v / top * (height - 2)):.1f}" '
        f'width="{max(1.0, bar - 2):.1f}" height="{max(1.0, v / top * (height - 2)):.1f}"/>'
        for i, v in enumerate(values))
    return (f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{_esc(label)}: last {len(values)} runs, latest {values[-1]:g}">{bars}</svg>')


def freshness_slos(connections: list[str], now: datetime) -> dict[str, float]:
    """connection id -> freshness SLO in seconds: the first freshness rule of alerts.yml covering it, else two
    schedule intervals (the connections file's schedule, hourly by default)."""
    from canonry.alerting import connection_schedules
    from canonry.alerting.checks import DEFAULT_SCHEDULE, schedule_interval
    from canonry.alerting.rules import load_alerts
    from canonry.durations import parse_duration

    try:
        loaded = load_alerts()
        rules = [r for r in (loaded.rules if loaded else []) if r.kind == "freshness"]
    except Exception:  # noqa: BLE001 - an invalid rules file must not take the health page down
        rules = []
    schedules = connection_schedules()
    out = {}
    for connection_id in connections:
        rule = next((r for r in rules if r.connections is None or connection_id in r.connections), None)
        interval = schedule_interval(schedules.get(connection_id, DEFAULT_SCHEDULE), now)
        if rule is not None and rule.max_age is not None:
            out[connection_id] = parse_duration(rule.max_age).total_seconds()
        else:
            out[connection_id] = (interval * (rule.max_intervals if rule else 2)).total_seconds()
    return out


def collect(now: datetime | None = None) -> dict[str, Any]:
    """Everything the page shows, as data."""
    from canonry import metrics, ops
    from canonry.alerting import open_alerts
    from canonry.forensics import connection_status

    now = now or datetime.now(UTC)
    connections = connection_status(now)
    slos = freshness_slos([c["connection_id"] for c in connections], now)
    conn = connect()
    try:
        ops.ensure_tables(conn)
        for c in connections:
            runs = conn.execute("""select calls, records, status from ops.sync_runs where connection_id = ?
                                   order by finished_at desc limit ?""", [c["connection_id"], RECENT_RUNS]).fetchall()
            runs.reverse()
            c["calls_series"] = [r[0] or 0 for r in runs]
            c["records_series"] = [sum(json.loads(r[1] or "{}").values()) for r in runs]
            c["slo_s"] = slos[c["connection_id"]]
            c["fresh"] = c["freshness_s"] is not None and c["freshness_s"] <= c["slo_s"]
            c["runbook"] = runbook(c["last_error_class"]) if c["last_run_status"] != "success" else None
            c["canary"] = conn.execute("""select ok, latency_ms, probed_at, error_class from ops.canary_runs
                                          where connection_id = ? order by probed_at desc limit 1""",
                                       [c["connection_id"]]).fetchone()
        alerts = open_alerts(conn)
        recent_failures = conn.execute(
            """select raised_at, job_name, connection_id, error_class, message from ops.alerts
               where source = 'dagster' and raised_at >= ? order by raised_at desc limit 10""",
            [now - timedelta(days=1)]).fetchall()
        guard = metrics.guard_outcomes(conn, None)
    finally:
        conn.close()
    return {"generated_at": now, "connections": connections, "alerts": alerts, "guard": guard,
            "run_failures": [dict(zip(("raised_at", "job_name", "connection_id", "error_class", "message"), r,
                                      strict=True)) for r in recent_failures]}


CSS = """
:root{--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--off:#6e7781;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:#f6f8fa}main{max-width:1100px;margin:0 auto;padding:12px}
h1{font-size:1.3rem;margin:.2rem 0}h2{font-size:1.05rem;margin:1.2rem 0 .5rem}.muted{color:var(--muted)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:10px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 12px;min-width:0}
.card h3{font-size:1rem;margin:0 0 .3rem;overflow-wrap:anywhere}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:.8rem;font-weight:600}
.ok{background:var(--ok)}.warn{background:var(--warn)}.bad{background:var(--bad)}.off{background:var(--off)}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 10px;margin:.4rem 0}dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}.spark{fill:#0969da;vertical-align:middle}
.alert{border-left:4px solid var(--bad);background:#fff;padding:8px 10px;margin:6px 0;border-radius:4px;
overflow-wrap:anywhere}.alert.ticket{border-color:var(--warn)}.alert.info{border-color:var(--off)}
table{border-collapse:collapse;background:#fff;width:100%}td,th{border:1px solid var(--line);padding:4px 8px;
text-align:left}a{color:#0969da}
"""


def _canary(last: tuple | None, now: datetime) -> str:
    if last is None:
        return '<span class="muted">never probed (`canonry canary -c ID`)</span>'
    ok, latency_ms, probed_at, error_class = last
    outcome = (f'<span class="badge ok">ok</span> {latency_ms:.0f} ms' if ok
               else f'<span class="badge bad">{_esc(error_class)}</span>')
    return f'{outcome} <span class="muted">{_esc(_age((now - probed_at).total_seconds()))} ago</span>'


def render(data: dict[str, Any], runbook_base: str | None = None) -> str:
    """The page. Runbook links point at `runbook_base` + `<class>.md` (default: the repository's docs)."""
    base = runbook_base if runbook_base is not None else (PROJECT_ROOT / "docs" / "runbooks").as_uri() + "/"
    now = data["generated_at"]

    def book_link(path: str | None, error_class: str | None) -> str:
        if not path:
            return ""
        hint = POLICIES[ErrorClass(error_class)].hint if error_class in ErrorClass._value2member_map_ else ""
        return (f'<a class="runbook" href="{_esc(base + Path(path).name)}">runbook: {_esc(error_class)}</a>'
                f' <span class="muted">— {_esc(hint)}</span>')

    cards = []
    for c in data["connections"]:
        state = c["state"] + (" (stalled)" if c["stalled"] else "")
        fresh = ("within SLO" if c["fresh"] else "STALE") if c["freshness_s"] is not None else "never synced"
        cards.append(f"""<article class="card connection" data-connection="{_esc(c['connection_id'])}">
<h3>{_esc(c['connection_id'])} <span class="badge {STATE_TONE.get(c['state'], 'off')}">{_esc(state)}</span></h3>
<div class="muted">{_esc(c['provider'])} · tenant {_esc(c['tenant_id'])}</div>
<dl><dt>freshness</dt><dd><span class="badge {'ok' if c['fresh'] else 'warn'}">{fresh}</span>
{_esc(_age(c['freshness_s']))} old, SLO {_esc(_age(c['slo_s']))}</dd>
<dt>last run</dt><dd>{_esc(c['last_run_status'] or 'none')}</dd>
<dt>records held</dt><dd>{c['records']}</dd>
<dt>last error</dt><dd>{_esc(c['last_error_class'] or '—')} {book_link(c['runbook'], c['last_error_class'])}</dd>
<dt>canary</dt><dd>{_canary(c['canary'], now)}</dd>
<dt>calls/run</dt><dd>{sparkline(c['calls_series'], 'API calls')}</dd>
<dt>loaded/run</dt><dd>{sparkline(c['records_series'], 'records loaded')}</dd></dl>
</article>""")
    alerts = [f"""<div class="alert {_esc(a['severity'])}" data-rule="{_esc(a['rule_id'])}">
<strong>[{_esc(a['severity'])}] {_esc(a['rule_id'])}</strong> {_esc(a['connection_id'] or '')}: {_esc(a['message'])}
<div class="muted">open since {_esc(_age((now - a['opened_at']).total_seconds()))} {book_link(a['runbook'], a['error_class'])}
</div></div>""" for a in data["alerts"]]
    failures = [f"""<div class="alert ticket"><strong>run failed</strong> {_esc(f['job_name'])}
{_esc(f['connection_id'] or '')}: {_esc((f['message'] or '')[:300])}</div>""" for f in data["run_failures"]]
    guard = "".join(f"<tr><td>{_esc(g['kind'])}</td><td>{_esc(g['verdict'])}</td><td>{g['checks']}</td>"
                    f"<td>{g['share']:.0%}</td></tr>" for g in data["guard"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Canonry health</title><style>{CSS}</style></head>
<body><main>
<h1>Canonry health</h1>
<div class="muted">generated {_esc(now.strftime('%Y-%m-%d %H:%M:%S UTC'))} · {len(data['connections'])} connection(s)
· {len(data['alerts'])} open alert(s)</div>
<h2>Open alerts</h2>
<section id="alerts">{''.join(alerts) or '<p class="muted">no open alerts</p>'}{''.join(failures)}</section>
<h2>Connections</h2>
<section class="grid" id="connections">{''.join(cards) or '<p class="muted">no connection has synced yet</p>'}</section>
<h2>Query guard</h2>
{f'<table><tr><th>kind</th><th>verdict</th><th>checks</th><th>share</th></tr>{guard}</table>' if guard
 else '<p class="muted">no guard checks recorded</p>'}
</main></body></html>
"""


def build(runbook_base: str | None = None) -> str:
    return render(collect(), runbook_base)


def app():
    """The page served fresh, with /metrics and /runbooks/<class>.md (Starlette)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import HTMLResponse, PlainTextResponse
    from starlette.routing import Route

    from canonry.metrics import metrics_route

    async def page(request):
        return HTMLResponse(await run_in_threadpool(build, "/runbooks/"))

    async def book(request):
        name = request.path_params["name"]
        if name.removesuffix(".md") not in ErrorClass._value2member_map_:
            return PlainTextResponse("no such runbook", status_code=404)
        return PlainTextResponse((PROJECT_ROOT / runbook(name.removesuffix(".md"))).read_text(),
                                 media_type="text/markdown")

    return Starlette(routes=[Route("/", page), Route("/runbooks/{name}", book), metrics_route()])
