"""Delivery of change events: signed POSTs (Standard Webhooks), at least once, retried with exponential
back-off, dead letters after the subscriber's last attempt, replay of dead letters, and status.

A delivery pass (`canonry events deliver`, or `--watch` as a service) reads the due deliveries with one
short warehouse connection, sends without holding the warehouse (a sync or build is never delayed by a
subscriber), one thread per subscriber (a slow or dead subscriber never delays another), then writes every
outcome with one more short connection. Per subscriber, deliveries go in `seq` order and a record's next
event waits while an earlier one of the same record is still pending: ordering per record holds unless an
earlier event became a dead letter (then later ones go on; a replayed dead letter arrives after them, and its
`data.sequence` tells the receiver it is older).

Signing (https://www.standardwebhooks.com): `webhook-id` (the event id, the same on every attempt: receivers
de-duplicate on it), `webhook-timestamp` (Unix seconds of the attempt), `webhook-signature: v1,<base64
HMAC-SHA256(key, "<id>.<timestamp>.<body>")>` with key = base64-decoded secret after `whsec_`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import requests

from canonry.events.subscribers import MAX_BACKOFF_SECONDS, SECRET_PREFIX, Subscriber, load_subscribers
from canonry.netsafety import guard_session
from canonry.secrets import SecretNotFound, redact

log = logging.getLogger("canonry.events")

TIMEOUT_SECONDS = 10.0        # per request: a slow subscriber costs its own thread at most this per event
BATCH = 1000                  # deliveries per subscriber per pass
USER_AGENT = "canonry-events/1"


def sign(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for this message (Standard Webhooks, v1 = HMAC-SHA256)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def backoff(subscriber: Subscriber, attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: base, 2×base, 4×base, … (capped)."""
    return min(subscriber.backoff_seconds * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)


@dataclass
class Outcome:
    subscriber_id: str
    event_id: str
    attempt: int
    attempted_at: datetime
    status: int | None
    ok: bool
    latency_ms: float
    error: str | None


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0          # attempts that failed and will be retried
    dead: int = 0            # deliveries that became dead letters in this pass
    blocked: int = 0         # waiting behind an earlier pending event of the same record
    per_subscriber: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"{self.delivered} delivered, {self.failed} failed (will retry), {self.dead} dead-lettered, "
                f"{self.blocked} waiting behind an earlier event of their record")


def _send(session: requests.Session, subscriber: Subscriber, secret: str, event_id: str, body: bytes,
          attempt: int) -> Outcome:
    attempted_at = datetime.now(UTC)
    timestamp = int(attempted_at.timestamp())
    headers = {"content-type": "application/json", "user-agent": USER_AGENT, "webhook-id": event_id,
               "webhook-timestamp": str(timestamp), "webhook-signature": sign(secret, event_id, timestamp, body)}
    started = time.perf_counter()
    try:
        response = session.post(subscriber.url, data=body, headers=headers, timeout=TIMEOUT_SECONDS,
                                allow_redirects=False)
        status, error = response.status_code, None if response.status_code < 300 else f"HTTP {response.status_code}"
    except Exception as exc:  # noqa: BLE001 - any failure of a receiver is an attempt to retry, never raised
        status, error = None, redact(f"{type(exc).__name__}: {exc}")[:300]
    latency = round((time.perf_counter() - started) * 1000, 2)
    return Outcome(subscriber.subscriber_id, event_id, attempt, attempted_at, status, error is None, latency, error)


def _subscriber_pass(subscriber: Subscriber, rows: list[tuple], now: datetime) -> tuple[list[Outcome], int]:
    """Send this subscriber's due deliveries in seq order, one pending event per record at a time."""
    try:
        secret = subscriber.secret()
    except SecretNotFound as exc:  # nothing can be signed: send nothing, say why, keep the deliveries pending
        log.error("subscriber %s: %s", subscriber.subscriber_id, exc)
        return [], 0
    session = requests.Session()
    guard_session(session, allow_private=subscriber.allow_private_network)
    blocked: set[str] = set()
    outcomes, waiting = [], 0
    for event_id, record_key, attempts, next_attempt_at, payload in rows:
        if record_key in blocked or next_attempt_at > now:
            blocked.add(record_key)
            waiting += next_attempt_at <= now
            continue
        outcome = _send(session, subscriber, secret, event_id, payload.encode(), attempts + 1)
        outcomes.append(outcome)
        if not outcome.ok:
            blocked.add(record_key)
    session.close()
    return outcomes, waiting


def _due(conn, subscriber_ids: list[str]) -> dict[str, list[tuple]]:
    rows = conn.execute(f"""
        select d.subscriber_id, d.event_id, d.record_key, d.attempts, d.next_attempt_at, e.payload
        from ops.deliveries d join ops.change_events e on e.event_id = d.event_id
        where d.status = 'pending' and d.subscriber_id in ({', '.join('?' for _ in subscriber_ids)})
        order by d.subscriber_id, d.seq""", subscriber_ids).fetchall()
    out: dict[str, list[tuple]] = {}
    for subscriber_id, *rest in rows:
        if len(out.setdefault(subscriber_id, [])) < BATCH:
            out[subscriber_id].append(tuple(rest))
    return out


def _record(conn, subscribers: dict[str, Subscriber], outcomes: list[Outcome], report: DeliveryReport) -> None:
    from canonry import ops

    updates = []
    for o in outcomes:
        subscriber = subscribers[o.subscriber_id]
        counts = report.per_subscriber.setdefault(o.subscriber_id, {"delivered": 0, "failed": 0, "dead": 0})
        if o.ok:
            status, next_at = "delivered", None
        elif o.attempt >= subscriber.max_attempts:
            status, next_at = "dead", None
        else:
            status, next_at = "pending", o.attempted_at + timedelta(seconds=backoff(subscriber, o.attempt))
        key = {"delivered": "delivered", "dead": "dead", "pending": "failed"}[status]
        counts[key] += 1
        setattr(report, key, getattr(report, key) + 1)
        updates.append([status, o.attempt, next_at, o.status, o.error, o.attempted_at,
                        o.attempted_at if o.ok else None, o.subscriber_id, o.event_id])
    if updates:
        conn.executemany("""update ops.deliveries set status = ?, attempts = ?, next_attempt_at = coalesce(?,
            next_attempt_at), last_status = ?, last_error = ?, updated_at = ?, delivered_at = ?
            where subscriber_id = ? and event_id = ?""", updates)
    ops.append("delivery_attempts", [{"subscriber_id": o.subscriber_id, "event_id": o.event_id,
                                      "attempt": o.attempt, "attempted_at": o.attempted_at, "status": o.status,
                                      "ok": o.ok, "latency_ms": o.latency_ms, "error": o.error}
                                     for o in outcomes], conn=conn)


def deliver(subscriber_id: str | None = None) -> DeliveryReport:
    """One delivery pass over every subscriber (or one): what is due is sent, outcomes recorded."""
    from canonry import ops
    from canonry.warehouse import connect

    subscribers = load_subscribers()
    if subscriber_id is not None:
        subscribers = {k: v for k, v in subscribers.items() if k == subscriber_id}
    report = DeliveryReport()
    if not subscribers:
        return report
    with connect(purpose="event delivery (reading)") as conn:
        ops.ensure_tables(conn)
        due = _due(conn, list(subscribers))
    now = datetime.now(UTC)
    due = {k: v for k, v in due.items() if v}
    if not due:
        return report
    with ThreadPoolExecutor(max_workers=min(8, len(due))) as pool:
        results = [f.result() for f in [pool.submit(_subscriber_pass, subscribers[k], rows, now)
                                        for k, rows in due.items()]]
    outcomes = [o for found, _ in results for o in found]
    report.blocked = sum(waiting for _, waiting in results)
    with connect(purpose="event delivery (recording)") as conn:
        _record(conn, subscribers, outcomes, report)
    return report


def watch(interval: float, on_pass: Callable[[DeliveryReport], None], passes: int | None = None) -> None:
    """Deliver every `interval` seconds (a service: `canonry events deliver --watch`)."""
    done = 0
    while passes is None or done < passes:
        on_pass(deliver())
        done += 1
        time.sleep(interval)


def replay(subscriber_id: str | None = None, event_id: str | None = None) -> int:
    """Dead letters back to pending, attempts reset, due now; returns how many."""
    from canonry import ops
    from canonry.warehouse import connect

    where, params = ["status = 'dead'"], []
    if subscriber_id:
        where.append("subscriber_id = ?")
        params.append(subscriber_id)
    if event_id:
        where.append("event_id = ?")
        params.append(event_id)
    with connect(purpose="event replay") as conn:
        ops.ensure_tables(conn)
        count = conn.execute(f"select count(*) from ops.deliveries where {' and '.join(where)}",
                             params).fetchall()[0][0]
        conn.execute(f"update ops.deliveries set status = 'pending', attempts = 0, next_attempt_at = ?, "
                     f"updated_at = ? where {' and '.join(where)}", [datetime.now(UTC), datetime.now(UTC), *params])
    return count


def dead_letters() -> list[tuple[str, int]]:
    """(subscriber id, dead letters) of subscribers that have some (`canonry status` lists them)."""
    from canonry import ops
    from canonry.warehouse import connect

    if not load_subscribers():
        return []
    with connect(purpose="event status") as conn:
        ops.ensure_tables(conn)
        return conn.execute("select subscriber_id, count(*) from ops.deliveries where status = 'dead' "
                            "group by subscriber_id order by subscriber_id").fetchall()


def status() -> list[dict]:
    """Per subscriber: deliveries by state, the oldest pending event's age, the last attempt's outcome."""
    from canonry import ops
    from canonry.warehouse import connect

    subscribers = load_subscribers()
    with connect(read_only=False, purpose="event status") as conn:
        ops.ensure_tables(conn)
        counts = conn.execute("""select subscriber_id, status, count(*), min(case when status = 'pending'
            then next_attempt_at end), min(case when status = 'pending' then updated_at end)
            from ops.deliveries group by subscriber_id, status""").fetchall()
        last = conn.execute("""select subscriber_id, max(attempted_at) from ops.delivery_attempts
            group by subscriber_id""").fetchall()
        errors = conn.execute("""select subscriber_id, last_error from ops.deliveries
            where status in ('dead', 'pending') and last_error is not null
            order by updated_at desc""").fetchall()
    out = []
    for sid, sub in subscribers.items():
        row = {**sub.public(), "pending": 0, "delivered": 0, "dead": 0, "next_attempt_at": None,
               "last_attempt_at": None, "last_error": None}
        for subscriber_id, state, n, next_at, _ in counts:
            if subscriber_id == sid:
                row[state] = n
                row["next_attempt_at"] = next_at.isoformat() if next_at else row["next_attempt_at"]
        row["last_attempt_at"] = next((at.isoformat() for s, at in last if s == sid and at), None)
        row["last_error"] = next((e for s, e in errors if s == sid), None)
        out.append(row)
    return out
