"""The warehouse writer lock: one DuckDB writer at a time, across processes, with a message instead of a
raw `Could not set lock` error.

DuckDB lets one process at a time open the warehouse file for writing. Every Canonry path that writes it
(dlt load steps, dbt builds, the validation gate, `ops` writes, push) takes this lock first: an
`fcntl.flock` on `<warehouse>.canonry-lock`, a file next to the warehouse that also says who holds it
(purpose, command, pid, since). A second process waits, prints once who it waits for ("waiting for the
warehouse lock held by sync of hubspot-a (pid 123) since 10:02:03 UTC …"), repeats that every
`REPORT_EVERY` seconds, and gives up after `timeout_seconds()` with a `transient` error that says what
to do — never silently, never forever.

The lock is held for one step (a load, a dbt build, the gate, an ops write), not for a whole run, so
syncs extract concurrently and load one at a time. It is re-entrant within a process (a dbt build that
writes `ops` rows does not wait for itself). With a PostgreSQL warehouse (`postgres_url()`), which has
many writers, it does nothing.

Public API: `writer_lock(purpose)` (a context manager), `lock_holder()`, `timeout_seconds()`,
`set_wait_reporter(fn)` (where the waiting message goes; stderr by default).
Schedulers (Dagster pools) serialise their own steps first; this lock is the second line of defence.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from canonry.errors import CanonryError, ErrorClass

TIMEOUT_ENV = "CANONRY_WAREHOUSE_LOCK_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 1800.0   # a 1M-record load or a full dbt build fits; a hung holder does not
REPORT_EVERY = 30.0                # a waiter says again that it still waits (never silent)
POLL_SECONDS = 0.1

_thread_lock = threading.RLock()   # threads of one process: one holder, re-entrant
_depth = 0
_handle: int | None = None


def lock_path() -> Path:
    from canonry.warehouse import warehouse_path

    path = warehouse_path()
    return path.with_name(path.name + ".canonry-lock")


def timeout_seconds() -> float:
    """How long a writer waits for the lock: `CANONRY_WAREHOUSE_LOCK_TIMEOUT` seconds (`canonry sync --wait`)."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None or raw == "":
        return DEFAULT_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise CanonryError(ErrorClass.CONFIG_ERROR, f"{TIMEOUT_ENV}={raw!r} is not a number of seconds",
                           hint=f"set {TIMEOUT_ENV} to seconds, e.g. 600") from None
    if value < 0:
        raise CanonryError(ErrorClass.CONFIG_ERROR, f"{TIMEOUT_ENV}={raw!r} is negative",
                           hint=f"set {TIMEOUT_ENV} to seconds (0: do not wait)")
    return value


def lock_holder() -> dict | None:
    """Who holds (or last held) the lock, as written into the lock file; None when nobody said."""
    try:
        text = lock_path().read_text()
    except OSError:
        return None
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None


def describe(holder: dict | None) -> str:
    if not holder:
        return "another process"
    since = holder.get("since", "")
    try:
        since = datetime.fromisoformat(since).strftime("%H:%M:%S UTC")
    except (TypeError, ValueError):
        pass
    return f"{holder.get('purpose') or holder.get('command')} (pid {holder.get('pid')}) since {since}"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


_reporter: Callable[[str], None] = _stderr


def set_wait_reporter(report: Callable[[str], None] | None) -> None:
    """Where waiters say whom they wait for when `writer_lock` is given no `report` (default: stderr);
    e.g. a Dagster step's `context.log.info`. None restores stderr."""
    global _reporter
    _reporter = report or _stderr


def _postgres() -> bool:
    from canonry.warehouse import postgres_url

    return postgres_url() is not None


def _acquire_file(purpose: str, timeout: float, report: Callable[[str], None]) -> int:
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    started = time.monotonic()
    reported_at: float | None = None
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            waited = time.monotonic() - started
            if waited >= timeout:
                raise CanonryError(
                    ErrorClass.TRANSIENT,
                    f"the warehouse {path.name.removesuffix('.canonry-lock')} is busy: its writer lock is held by "
                    f"{describe(lock_holder())}; waited {waited:.0f}s for {purpose}",
                    hint=f"re-run when it is done, or wait longer with `canonry sync --wait SECONDS` "
                         f"({TIMEOUT_ENV}); a DuckDB warehouse takes one writer at a time, PostgreSQL many")
            if reported_at is None or time.monotonic() - reported_at >= REPORT_EVERY:
                report(f"{purpose}: waiting for the warehouse lock held by {describe(lock_holder())} "
                       f"(waited {waited:.0f}s, giving up after {timeout:.0f}s)")
                reported_at = time.monotonic()
            time.sleep(POLL_SECONDS)
    except BaseException:
        os.close(handle)
        raise
    from canonry.secrets import redact  # argv never carries a secret by design; the lock file is readable

    holder = {"purpose": purpose, "command": redact(" ".join(["canonry", *sys.argv[1:]]))[:300], "pid": os.getpid(),
              "host": socket.gethostname(), "since": datetime.now(UTC).isoformat(timespec="seconds")}
    os.ftruncate(handle, 0)
    os.pwrite(handle, json.dumps(holder).encode(), 0)
    return handle


@contextmanager
def writer_lock(purpose: str, *, timeout: float | None = None,
                report: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the warehouse writer lock for one step (`purpose` names it for waiters, e.g. "sync of
    hubspot-a (load)"). Re-entrant in a process; a no-op on PostgreSQL. Raises a `transient`
    CanonryError after `timeout` seconds (default `timeout_seconds()`)."""
    global _depth, _handle
    if _postgres():
        yield
        return
    limit = timeout_seconds() if timeout is None else timeout
    if not _thread_lock.acquire(timeout=max(limit, 0.001)):
        raise CanonryError(ErrorClass.TRANSIENT, f"{purpose}: another thread of this process held the "
                           f"warehouse writer lock for more than {limit:.0f}s",
                           hint=f"raise {TIMEOUT_ENV} or run the steps one after another")
    try:
        if _depth == 0:
            _handle = _acquire_file(purpose, limit, report or _reporter)
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
            if _depth == 0 and _handle is not None:
                handle, _handle = _handle, None
                os.ftruncate(handle, 0)
                os.close(handle)   # closing the descriptor releases the flock
    finally:
        _thread_lock.release()


def held() -> bool:
    """True while this process holds the lock (any thread)."""
    return _depth > 0
