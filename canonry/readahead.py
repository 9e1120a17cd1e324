"""Read-ahead across checkpoints: a resumable resource's next pages are fetched while dlt normalises and
loads the checkpoint it has just yielded.

dlt runs extract, normalise and load in turn, so without this the HTTP client waits for DuckDB and DuckDB
waits for the HTTP client. A `ReadAhead` runs a resource's page iterator in a background thread, up to
`depth` pages ahead of what the resource has taken, and hands the pages over in order; the resource
still decides what a checkpoint holds and stores the position of the page after its last one, exactly as
when it reads the pages itself. So:

- nothing is committed ahead of the load: pages read ahead live only in memory, and a run killed or
  failed in between re-reads them from the committed position (a crash costs at most `depth` repeated
  calls per resource, like a smaller checkpoint);
- the same requests are made in the same order, each once, when the run succeeds;
- an error raised while reading page k is raised by the resource when it reaches page k (the same
  exception object: class, endpoint and message unchanged), never earlier.

`depth` bounds memory: a page is kept as the arrow table it becomes (~100-150 KB per HubSpot page).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")

# Pages a resource may read ahead of what it has taken (per resource; 0 reads in turn, as dlt would).
DEFAULT_READ_AHEAD_PAGES = 200
_PUT_POLL_SECONDS = 0.1
_END = object()


def read_ahead_pages() -> int:
    """`CANONRY_READ_AHEAD_PAGES` (default 200; 0 turns read-ahead off)."""
    return max(0, int(os.environ.get("CANONRY_READ_AHEAD_PAGES", DEFAULT_READ_AHEAD_PAGES)))


class ReadAhead(Generic[Item]):
    """Pages `(item, next_position)` of one iterator, read by a daemon thread up to `depth` ahead.

    `position` is where the next page to be handed over starts (the position of the page after the last
    one handed over): a resource that asks again from that position continues the same stream."""

    def __init__(self, pages: Iterator[tuple[Item, Any]], start: Any, depth: int, name: str) -> None:
        self.position = start
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._finished = False  # the end or an error was handed over: nothing more will come
        self._thread = threading.Thread(target=self._read, args=(pages,), name=f"canonry-readahead-{name}",
                                        daemon=True)
        self._thread.start()

    def continues_from(self, position: Any) -> bool:
        return not self._finished and not self._stop.is_set() and position == self.position

    def __iter__(self) -> Iterator[tuple[Item, Any]]:
        while not self._finished:
            kind, value = self._queue.get()
            if kind is _END:
                self._finished = True
                return
            if kind == "error":
                self._finished = True
                raise value
            self.position = value[1]
            yield value

    def close(self) -> None:
        """Stop reading (a run that ends early, or a resource that asks from elsewhere)."""
        self._stop.set()
        while True:  # unblock a reader waiting for room
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break

    def _read(self, pages: Iterator[tuple[Item, Any]]) -> None:
        try:
            for page in pages:
                if self._stop.is_set() or not self._put(("page", page)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the resource, raised where it reads
            self._put(("error", exc))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    def _put(self, entry: tuple) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=_PUT_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False


class ReadAheads:
    """The read-aheads of one sync (one per resource and phase), kept from one checkpoint to the next."""

    def __init__(self) -> None:
        self._open: dict[Hashable, ReadAhead] = {}

    def pages(self, key: Hashable, start: Any, open_pages: Callable[[Any], Iterator[tuple[Item, Any]]],
              depth: int | None = None) -> Iterator[tuple[Item, Any]]:
        """Pages from `start` on: the read-ahead already running from there, else a new one (`depth` 0:
        the iterator itself, read in turn)."""
        depth = read_ahead_pages() if depth is None else depth
        if depth <= 0:
            return open_pages(start)
        current = self._open.get(key)
        if current is not None and current.continues_from(start):
            return iter(current)
        if current is not None:
            current.close()
        current = self._open[key] = ReadAhead(open_pages(start), start, depth, name=str(key))
        return iter(current)

    def close(self) -> None:
        for current in self._open.values():
            current.close()
        self._open.clear()
