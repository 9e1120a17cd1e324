"""Consistent copies of the DuckDB warehouse file, for readers that must not wait for (or meet) its writer.

DuckDB lets no process read a file another process writes. A plain file copy of the warehouse and its WAL
is the image of one instant when neither file changed while it was made (size and mtime before and after):
DuckDB's storage (checkpoint headers, WAL replay) reads such a copy consistently, like a file after a
crash. A copy that raced a write is dropped and may be tried again. Used by the read API's published
snapshots (canonry/api/snapshot.py) and by `canonry sql run` while a sync or build holds the file.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

QUIET_SECONDS = 0.2   # the files must not have changed for this long before a copy is attempted


def wal_of(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_size, stat.st_mtime_ns


def stamps(warehouse: Path) -> tuple:
    """(size, mtime) of the warehouse file and of its WAL (None for a file that does not exist)."""
    return _stamp(warehouse), _stamp(wal_of(warehouse))


def quiet(source: tuple, seconds: float = QUIET_SECONDS) -> bool:
    """Whether the files of `stamps(...)` have not changed for `seconds`."""
    newest_change = max(s[1] for s in source if s is not None) / 1e9
    return time.time() - newest_change >= seconds


def discard(target: Path) -> None:
    target.unlink(missing_ok=True)
    wal_of(target).unlink(missing_ok=True)


def copy_if_unchanged(warehouse: Path, target: Path, source: tuple) -> bool:
    """Copy the warehouse (and WAL) to `target`; True when both were unchanged from `source` throughout
    (the copy is then one instant's image), else the copy is removed and False returned."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(warehouse, target)
    if source[1] is not None:
        try:
            shutil.copyfile(wal_of(warehouse), wal_of(target))
        except FileNotFoundError:
            pass
    if stamps(warehouse) != source:
        discard(target)
        return False
    return True


def consistent_copy(warehouse: Path, target: Path, within_seconds: float = 10.0) -> Path:
    """A consistent copy at `target`, retrying while the writer writes; TimeoutError when none could be
    made within `within_seconds` (the writer never paused for QUIET_SECONDS)."""
    deadline = time.monotonic() + within_seconds
    while True:
        source = stamps(warehouse)
        if source[0] is None:
            raise FileNotFoundError(warehouse)
        if quiet(source) and copy_if_unchanged(warehouse, target, source):
            return target
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{warehouse} was written continuously for {within_seconds:g} s")
        time.sleep(QUIET_SECONDS / 2)
