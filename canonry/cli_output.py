"""What the CLI shows: `status` as a table that fits the terminal or as documented JSON, sync results as
JSON, and live progress of a sync on a terminal (never in a pipe or under --json)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from canonry import providers
from canonry.durations import format_duration
from canonry.errors import CanonryError

# `canonry status --json`: one object per connection with exactly these fields (timestamps ISO 8601, UTC).
STATUS_FIELDS: dict[str, str] = {
    "connection_id": "the connection's id in the connections file",
    "provider": "provider slug",
    "tenant_id": "the connection's tenant",
    "state": "healthy | degraded | failing | needs_reauth | misconfigured | disconnected",
    "stalled": "true when the last run failed like the one before it without progress",
    "last_run": "when the last run finished (ISO 8601) or null",
    "last_run_status": "success | partial | failed, or null",
    "last_success": "when the last successful run finished (ISO 8601) or null",
    "freshness_s": "seconds since last_success, or null",
    "records": "distinct records stored for the connection, over its objects",
    "records_by_object": "{object: distinct records}, the provider's objects only",
    "error_classes": "error classes met in the last runs, newest first",
    "last_error_class": "error class of the last run, or null",
    "runbook": "the runbook of last_error_class (docs/runbooks/<class>.md), or null",
    "open_alerts": "alerts not yet resolved: [{raised_at, severity, error_class, source, run_id, message}]",
    "paused": "the connection's pause (canonry pause): {objects (null: all), reason, paused_by, paused_at}, "
              "or null",
    "pinned": "the dbt code a rollout pinned the connection's canonical rows to (canonry promote / rollback): "
              "{manifest_hash, git_commit, action, pinned_by, pinned_at}, or null",
}
ALERT_FIELDS = ("raised_at", "severity", "error_class", "source", "run_id", "message")


def iso(value):
    """Datetimes and dates as ISO 8601 text (timezone kept); anything else unchanged."""
    return value.isoformat() if isinstance(value, datetime | date) else value


def provider_objects(provider: str) -> set[str]:
    """The objects a provider's source reads (internal tables such as key scans are not records)."""
    if not providers.is_provider(provider):
        return set()
    return set(providers.spec(provider).object_names)


def documented_status(record: dict) -> dict:
    """A `connection_status()` record reduced to STATUS_FIELDS, timestamps as ISO 8601."""
    objects = provider_objects(record["provider"])
    by_object = {k: v for k, v in (record.get("records_by_object") or {}).items() if not objects or k in objects}
    out = {name: iso(record.get(name)) for name in STATUS_FIELDS}
    out["records_by_object"] = by_object
    out["records"] = sum(by_object.values())
    out["open_alerts"] = [{k: iso(a.get(k)) for k in ALERT_FIELDS} for a in record.get("open_alerts", [])]
    paused = record.get("paused")
    out["paused"] = None if paused is None else {
        "objects": list(paused.objects) if paused.objects else None, "reason": paused.reason,
        "paused_by": paused.paused_by, "paused_at": iso(paused.paused_at)}
    pinned = record.get("pinned")
    out["pinned"] = None if pinned is None else {
        "manifest_hash": pinned.version.manifest_hash, "git_commit": pinned.version.git_commit,
        "action": pinned.action, "pinned_by": pinned.pinned_by, "pinned_at": iso(pinned.pinned_at)}
    return out


def _short_time(value) -> str:
    """`2026-12-07 10:46Z`: minutes are enough on a terminal (--json has the full timestamp)."""
    if not isinstance(value, datetime):
        return str(value or "")
    return value.strftime("%Y-%m-%d %H:%M") + ("Z" if value.utcoffset() is not None and
                                                not value.utcoffset().total_seconds() else "")


# Columns of the status table, most important first: the first ones are kept on a narrow terminal.
STATUS_COLUMNS: tuple[str, ...] = ("connection", "state", "last success", "freshness", "records", "provider",
                                   "last run", "error classes (last runs)")


def status_table(records: list[dict], width: int, duration) -> Table:
    """The status table with as many columns (in STATUS_COLUMNS order) as fit `width`; never cuts a
    connection id or a timestamp."""
    rows = []
    for r in records:
        public = documented_status(r)
        rows.append({
            "connection": r["connection_id"], "provider": r["provider"],
            "state": r["state"] + (" (stalled)" if r["stalled"] else ""),
            "last success": _short_time(r["last_success"]) or "never",
            "freshness": "" if r["freshness_s"] is None else duration(r["freshness_s"]),
            "records": str(public["records"]), "last run": str(r["last_run_status"] or ""),
            "error classes (last runs)": ", ".join(r["error_classes"]),
        })
    kept: list[str] = []
    used = 4  # the table's outer edges
    for column in STATUS_COLUMNS:
        cells = [len(row[column]) for row in rows]
        need = max([len(column) if column != "error classes (last runs)" else 12, *cells]) + 3
        if column == "error classes (last runs)" and used + 15 <= width:
            kept.append(column)  # the last column wraps; it takes what is left
            break
        if used + need > width:
            continue
        kept.append(column)
        used += need
    table = Table(title="Connections")
    for column in kept:
        wraps = column == "error classes (last runs)"
        table.add_column(column if not wraps else "errors (last runs)", no_wrap=not wraps,
                         justify="right" if column in ("records", "freshness") else "left")
    for row in rows:
        table.add_row(*(row[column] for column in kept))
    return table


def sync_result_json(result) -> dict:
    """A SyncResult for `sync --json` / `demo --json`."""
    error = result.error
    return {
        "connection_id": result.connection_id, "provider": result.provider, "status": result.status,
        "records": dict(result.records), "calls": result.calls, "retries": result.retries,
        "throttled": result.throttled, "duration_s": round(result.duration_s, 2),
        "checkpoints": result.checkpoints, "stalled": bool(result.stalled),
        "error": None if error is None else {"class": str(getattr(error, "error_class", "") or ""),
                                             "message": str(error)},
    }


def _endpoint_summary(telemetry) -> tuple[int, int, str]:
    with telemetry.lock:
        stats = [(template, s.calls) for (_, template), s in telemetry.by_endpoint.items()]
        throttled = sum(s.throttled for s in telemetry.by_endpoint.values())
    calls = sum(n for _, n in stats)
    busiest = sorted(stats, key=lambda item: -item[1])[:3]
    detail = ", ".join(f"{template.rsplit('/', 1)[-1] or template} {n}" for template, n in busiest)
    return calls, throttled, detail


@contextmanager
def sync_progress(console: Console, connection_id: str, enabled: bool) -> Iterator:
    """Yields an `on_start` hook for `pipeline.sync`: while the sync runs, a terminal shows its calls so
    far (pages, per endpoint), rate-limit waits and elapsed time, refreshed every half second. Disabled
    (a no-op hook) off a terminal or when `enabled` is false, so pipes and --json stay clean."""
    if not enabled or not console.is_terminal:
        yield None
        return
    import time

    holder: dict = {}
    stop = threading.Event()
    started = time.monotonic()
    with console.status(f"syncing {connection_id} …") as spinner:
        def refresh() -> None:
            while not stop.wait(0.5):
                runtime = holder.get("runtime")
                if runtime is None:
                    continue
                calls, throttled, detail = _endpoint_summary(runtime.telemetry)
                waits = f", {throttled} rate-limit waits" if throttled else ""
                spinner.update(f"syncing {connection_id}: {calls} API calls ({detail}){waits}, "
                               f"{time.monotonic() - started:.0f}s")

        thread = threading.Thread(target=refresh, daemon=True)
        thread.start()
        try:
            yield lambda runtime: holder.__setitem__("runtime", runtime)
        finally:
            stop.set()
            thread.join(timeout=2)


class _RedactingConsole(Console):
    """A rich console whose every printed string passes the redaction filter."""

    def print(self, *objects, **kwargs) -> None:  # noqa: A003
        from canonry.secrets import redact

        super().print(*(redact(o) if isinstance(o, str) else o for o in objects), **kwargs)


console = _RedactingConsole()
err_console = _RedactingConsole(stderr=True)


def _fail(message: str, code: int = 1) -> None:
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(str(message))}", soft_wrap=True)
    raise typer.Exit(code)




def _load_one(config: Path | None, connection_id: str, require_tokens: bool = False):
    from canonry.validation import load_connections

    try:
        # One connection's command (connect, disconnect, canary, …) builds nothing from its objects.
        return load_connections(config, require_tokens=require_tokens, builds_canonical=False).get(connection_id)
    except CanonryError as exc:
        _fail(str(exc))


_duration = format_duration  # the CLI's name for it
