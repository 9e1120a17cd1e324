"""Read the next API page while the current one is being processed.

A sync alternates between waiting for the provider (the socket, no GIL held) and building arrow tables
(CPU). `prefetch(pages)` runs the page iterator in one background thread, `depth` pages ahead, so the
two overlap. Order, values and exceptions are those of the wrapped iterator (an exception is re-raised
in the consumer, the same object, after the pages before it). The wrapped iterator must not share a
non-thread-safe object with the consumer while it runs (give it its own HTTP session, or use that
session only after the loop: the thread has finished when iteration ends).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield `items` in order, fetched up to `depth` ahead by a background thread."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                buffer.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            put((_DONE, exc))

    thread = threading.Thread(target=produce, name="canonry-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()
