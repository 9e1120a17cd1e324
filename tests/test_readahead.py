"""Read-ahead across checkpoints (canonry.readahead): pages come in order, each read once, an error surfaces
where it happened, memory is bounded by the depth, and a sync that reads ahead makes the minimum calls."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from canonry.pipeline import sync
from canonry.readahead import ReadAheads
from tests.helpers import clear_request_log, query, request_log


class Provider:
    """Pages 0..count-1 as (page, next position); records which pages were read and can fail at one."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.read: list[int] = []
        self.error = RuntimeError("page 3 answered 500")

    def pages(self, start: int | None) -> Iterator[tuple[int, int | None]]:
        page = start or 0
        while page < self.count:
            if page == self.fail_at:
                raise self.error
            self.read.append(page)
            following = page + 1 if page + 1 < self.count else None
            yield page, following
            page += 1


def wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def take(pages: Iterator[tuple[int, int | None]], n: int) -> list[int]:
    taken = []
    for page, _ in pages:
        taken.append(page)
        if len(taken) == n:
            break
    return taken


def test_pages_are_read_ahead_up_to_the_depth_and_continue_at_the_next_checkpoint():
    provider, aheads = Provider(10), ReadAheads()
    first = take(aheads.pages("contacts", None, provider.pages, depth=3), 2)
    # While the checkpoint "loads", the reader runs ahead: the depth bounds it (+1 held by the blocked put).
    wait_until(lambda: len(provider.read) >= 5)
    time.sleep(0.2)
    assert first == [0, 1] and len(provider.read) <= 2 + 3 + 1
    # The next checkpoint asks from the position stored after page 1: the same stream, nothing re-read.
    rest = [page for page, _ in aheads.pages("contacts", 2, provider.pages, depth=3)]
    assert rest == list(range(2, 10)) and provider.read == list(range(10))
    aheads.close()


@pytest.mark.parametrize("depth", [0, 2])
def test_an_error_is_raised_where_the_page_failed_not_earlier(depth):
    provider, aheads = Provider(10, fail_at=3), ReadAheads()
    got: list[int] = []
    with pytest.raises(RuntimeError) as raised:
        for page, _ in aheads.pages("contacts", None, provider.pages, depth=depth):
            got.append(page)
    assert got == [0, 1, 2] and raised.value is provider.error
    aheads.close()


def test_asking_from_another_position_starts_over_and_stops_the_old_reader():
    provider, aheads = Provider(1000), ReadAheads()
    assert take(aheads.pages("contacts", None, provider.pages, depth=2), 1) == [0]
    readers = {t for t in threading.enumerate() if t.name.startswith("canonry-readahead")}
    assert len(readers) == 1
    assert take(aheads.pages("contacts", 500, provider.pages, depth=2), 2) == [500, 501]
    old = readers.pop()
    old.join(timeout=5)
    assert not old.is_alive()
    aheads.close()
    wait_until(lambda: not any(t.name.startswith("canonry-readahead") for t in threading.enumerate()))


def test_a_sync_reading_ahead_across_checkpoints_makes_each_call_once(data_dir, sandbox_factory, connect_sandbox,
                                                                     monkeypatch):
    monkeypatch.setenv("CANONRY_CHECKPOINT_PAGES", "2")
    monkeypatch.setenv("CANONRY_READ_AHEAD_PAGES", "3")
    server = sandbox_factory("hubspot", scale=950)  # 10 list pages per object: 5 checkpoints
    connection = connect_sandbox(server, "hubspot-readahead", objects=["contacts", "companies"])
    clear_request_log(server)
    result = sync(connection)
    assert result.status == "success", result.error
    assert result.checkpoints >= 5
    lists = [(r["path"], r["query"]) for r in request_log(server)
             if r["path"].startswith("/crm/v3/objects/") and "archived=false" in r["query"]]
    assert len(lists) == 20 and len(set(lists)) == 20  # 10 pages per object, none read twice
    raw = query("""select count(*) as n, count(distinct remote_id) as d from raw_hubspot.contacts""")[0]
    assert raw["n"] == raw["d"] == 950
    wait_until(lambda: not any(t.name.startswith("canonry-readahead") for t in threading.enumerate()))
