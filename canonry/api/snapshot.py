"""Published snapshots of the DuckDB warehouse, for the read API: reads never touch the warehouse's lock.

DuckDB lets no process read a file another process writes, and opening the file costs tens of milliseconds
per request. So the API reads a copy: when the warehouse file (and its WAL) changed since the last copy
and has been quiet for `QUIET_SECONDS`, the next request copies them to `<data dir>/api/snapshots/` (a
plain file copy — no DuckDB lock, a sync is never delayed; canonry/warehouse_snapshot.py keeps only a copy
that is one instant's image) and keeps one read-only connection to the copy; each request takes its own
cursor of it. A copy that raced a write is dropped and tried again later; meanwhile requests read the
previous snapshot, so every request — and a walk over pages between two builds — sees one consistent state.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from canonry.warehouse_snapshot import QUIET_SECONDS, copy_if_unchanged, discard, quiet, stamps

RETRY_SECONDS = 1.0       # after a copy that raced a write
KEEP_RETIRED = 2          # snapshots kept open after being replaced (requests may still read them)

__all__ = ["QUIET_SECONDS", "NoSnapshot", "Snapshots"]


class NoSnapshot(Exception):
    """No consistent copy of the warehouse could be made yet (missing, or being written)."""


class Snapshots:
    def __init__(self, warehouse: Path, directory: Path) -> None:
        self.warehouse, self.directory = warehouse, directory
        self._lock = threading.Lock()
        self._current = None                    # (source stamps, duckdb connection, path)
        self._retired: list = []
        self._next_attempt = 0.0
        self._serial = 0
        self._prune_orphans()

    def _prune_orphans(self) -> None:
        """Snapshots left by servers that are gone (named warehouse-<pid>-<n>.duckdb)."""
        for path in self.directory.glob("warehouse-*-*.duckdb*"):
            pid = int(path.name.split("-")[1]) if path.name.split("-")[1].isdigit() else 0
            try:
                os.kill(pid, 0)
                alive = pid > 0
            except ProcessLookupError:
                alive = False
            except PermissionError:  # a live process of another user
                alive = True
            if not alive:
                path.unlink(missing_ok=True)

    def _source(self) -> tuple:
        return stamps(self.warehouse)

    def cursor(self):
        """A cursor of the newest consistent snapshot (publishing one first when the warehouse changed)."""
        source = self._source()
        current = self._current
        if current is None or current[0] != source:
            if self._lock.acquire(blocking=current is None):
                try:
                    self._maybe_publish(source)
                finally:
                    self._lock.release()
            current = self._current
        if current is None:
            raise NoSnapshot("the warehouse is being written and has no published snapshot yet")
        return current[1].cursor()

    def _maybe_publish(self, source: tuple) -> None:
        if self._current is not None and self._current[0] == source:
            return
        if source[0] is None:
            raise NoSnapshot("the warehouse has not been built yet: run `canonry sync` (or `canonry demo`)")
        now = time.monotonic()
        if now < self._next_attempt or not quiet(source):
            return
        import duckdb

        self._serial += 1
        target = self.directory / f"warehouse-{os.getpid()}-{self._serial}.duckdb"
        if not copy_if_unchanged(self.warehouse, target, source):  # a write raced the copy
            self._next_attempt = now + RETRY_SECONDS
            return
        try:
            conn = duckdb.connect(str(target), read_only=True)
        except duckdb.Error:
            discard(target)
            self._next_attempt = now + RETRY_SECONDS
            return
        if self._current is not None:
            self._retired.append(self._current)
        self._current = (source, conn, target)
        while len(self._retired) > KEEP_RETIRED:
            _, old, path = self._retired.pop(0)
            old.close()
            discard(path)

    def close(self) -> None:
        for _, conn, path in [*self._retired, *([self._current] if self._current else [])]:
            conn.close()
            discard(path)
        self._current, self._retired = None, []
