"""A lazily generated, mutable record collection: the storage of every provider sandbox.

Record `i` of a collection is a pure function of (seed, i), so a million-record sandbox costs no memory
until a record is changed. Changes (creates, updates, deletes) live in small overlays. Base records have
non-decreasing modification times in index order (several share a timestamp, which exercises boundary
de-duplication), so "modified since T" over the base part is a binary search, not a scan.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

BASE_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
SECONDS_PER_BASE_STEP = 7
RECORDS_PER_BASE_STEP = 3

Record = dict


def base_modified_at(index: int) -> datetime:
    """Modification time of an unchanged base record: three records share each 7-second step."""
    return _step_time(index // RECORDS_PER_BASE_STEP)


def base_created_at(index: int) -> datetime:
    return _step_time(index // RECORDS_PER_BASE_STEP) - _CREATED_BEFORE


_CREATED_BEFORE = timedelta(days=30)


@lru_cache(maxsize=1024)
def _step_time(step: int) -> datetime:
    return BASE_EPOCH + timedelta(seconds=step * SECONDS_PER_BASE_STEP)


def first_index_modified_since(since: datetime) -> int:
    """The smallest base index whose modification time is >= since."""
    if since <= BASE_EPOCH:
        return 0
    steps = -(-int((since - BASE_EPOCH).total_seconds()) // SECONDS_PER_BASE_STEP)
    return steps * RECORDS_PER_BASE_STEP


@dataclass
class Entry:
    """One changed record: its current body, when it changed, and whether it is deleted."""

    record: Record
    modified_at: datetime
    created_at: datetime
    deleted_at: datetime | None = None


@dataclass
class Collection:
    """Records of one object type, addressed by index; ids are derived from the index."""

    name: str
    base_size: int
    factory: Callable[[int], Record]
    id_of: Callable[[int], str]
    parse_id: Callable[[str], int | None]
    changes: dict[int, Entry] = field(default_factory=dict)
    created: int = 0
    version: int = 0  # bumped by every write (page caches compare it)
    lock: threading.RLock = field(default_factory=threading.RLock)
    # Indexes ordered by modification time among changed records (kept sorted on write).
    _changed_order: list[tuple[datetime, int]] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Number of indexes ever allocated (alive, deleted or not)."""
        return self.base_size + self.created

    def index_of(self, remote_id: str) -> int | None:
        """The index of an id this collection issued, else None."""
        index = self.parse_id(remote_id)
        if index is None or not 0 <= index < self.size or self.id_of(index) != remote_id:
            return None
        return index

    def get(self, index: int) -> Entry:
        """The record at index with its timestamps (deleted records included)."""
        entry = self.changes.get(index)
        if entry is not None:
            return entry
        if not 0 <= index < self.base_size:
            raise KeyError(index)
        return Entry(self.factory(index), base_modified_at(index), base_created_at(index))

    def is_alive(self, index: int) -> bool:
        entry = self.changes.get(index)
        return entry is None or entry.deleted_at is None

    def iter_alive(self, start: int = 0) -> Iterator[tuple[int, Entry]]:
        """Alive records in index order from start."""
        for index in range(start, self.size):
            entry = self.get(index)
            if entry.deleted_at is None:
                yield index, entry

    def iter_deleted(self) -> Iterator[tuple[int, Entry]]:
        for index in sorted(self.changes):
            entry = self.changes[index]
            if entry.deleted_at is not None:
                yield index, entry

    def count_alive(self) -> int:
        return self.size - sum(1 for e in self.changes.values() if e.deleted_at is not None)

    def iter_modified_since(self, since: datetime, include_deleted: bool = False) -> Iterator[tuple[int, Entry]]:
        """Records with modification time >= since, ordered by (modification time, index)."""
        start = min(first_index_modified_since(since), self.base_size)
        base = (
            (i, self.get(i))
            for i in range(start, self.base_size)
            if i not in self.changes
        )
        with self.lock:
            changed = [(ts, i) for ts, i in self._changed_order if ts >= since]
        changed_entries = (
            (i, self.changes[i]) for _, i in changed
            if include_deleted or self.changes[i].deleted_at is None
        )
        # Changed records are always newer than every base record (base times are in 2025).
        yield from base
        yield from changed_entries

    def count_modified_since(self, since: datetime, include_deleted: bool = False) -> int:
        start = min(first_index_modified_since(since), self.base_size)
        unchanged_base = (self.base_size - start) - sum(1 for i in self.changes if start <= i < self.base_size)
        with self.lock:
            changed = [i for ts, i in self._changed_order if ts >= since]
        alive_changed = sum(1 for i in changed if include_deleted or self.changes[i].deleted_at is None)
        return unchanged_base + alive_changed

    def targets(self, action: str, count: int, rng, ids: list[str] | None = None,
                eligible: Callable[[int], bool] | None = None) -> list[int]:
        """The indexes a control-endpoint mutation acts on: the named ids (KeyError for an unknown one), or
        `count` drawn at random from the alive records (deleted ones for `restore`) that are eligible."""
        if ids is not None:
            indexes = [self.index_of(i) for i in ids]
            if None in indexes:
                raise KeyError(ids[indexes.index(None)])
            return indexes  # type: ignore[return-value]
        source = self.iter_deleted() if action == "restore" else self.iter_alive()
        pool = [i for i, _ in source if eligible is None or eligible(i)]
        return rng.sample(pool, min(count, len(pool)))

    # -- writes -------------------------------------------------------------------------------
    def _touch(self, index: int, entry: Entry) -> None:
        with self.lock:
            previous = self.changes.get(index)
            if previous is not None:
                position = bisect.bisect_left(self._changed_order, (previous.modified_at, index))
                if position < len(self._changed_order) and self._changed_order[position] == (previous.modified_at, index):
                    del self._changed_order[position]
            bisect.insort(self._changed_order, (entry.modified_at, index))
            self.changes[index] = entry
            self.version += 1

    def create(self, record_for_index: Callable[[int], Record], now: datetime) -> int:
        with self.lock:
            index = self.size
            self.created += 1
            self._touch(index, Entry(record_for_index(index), now, now))
            return index

    def update(self, index: int, mutate: Callable[[Record], Record], now: datetime) -> Entry:
        with self.lock:
            current = self.get(index)
            if current.deleted_at is not None:
                raise KeyError(index)
            entry = Entry(mutate(dict(current.record)), now, current.created_at)
            self._touch(index, entry)
            return entry

    def delete(self, index: int, now: datetime) -> Entry:
        with self.lock:
            current = self.get(index)
            if current.deleted_at is not None:
                raise KeyError(index)
            entry = Entry(current.record, now, current.created_at, deleted_at=now)
            self._touch(index, entry)
            return entry

    def restore(self, index: int, now: datetime) -> Entry:
        with self.lock:
            current = self.get(index)
            entry = Entry(current.record, now, current.created_at, deleted_at=None)
            self._touch(index, entry)
            return entry
