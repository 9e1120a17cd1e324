"""Resumable passes: the checkpoint contract of docs/DEVELOPING.md ("Checkpoints") as one kit helper.

A resource listed in its provider's `SPEC.resumable` reads its pages through a `ResumablePass` (one that is
not listed may use it too: its pass then runs to completion in one batch, and a stop reads it again):

    pass_ = ResumablePass(runtime, "candidates", state, begin=lambda started: {"full": True})
    for records in pass_.pages(lambda position: pages_from(session, url, position)):
        pass_.add(page_table(records, ...))
    if pass_.finished:
        state["cursor"] = ...                 # the source moves its cursor only when the pass is done
    yield from pass_.commit()

`pages(position)` is the provider's page iterator started at a saved position (None: the first page); it
yields `(page, position of the page after it)`, the latter None on the last page. One pipeline run (one dlt
load package) takes at most `runtime.checkpoint_pages` pages or `CANONRY_CHECKPOINT_SECONDS` of fetching;
`commit()` stores where to continue in `state["resume"]` and yields the checkpoint's pages as **one** arrow
table per raw table (dlt's cost is per item), so the pages and their resume point land in the same package.
After a SIGKILL the next run loads that package and continues from the position it holds: what a kill
throws away is at most the checkpoint being fetched.

A pass that began in an earlier (killed or stopped) run saw the world as it was then: records changed
while it was paused, on pages it had already read, are behind it. When such a pass finishes, the same run
starts a fresh pass of whatever kind the source starts now (an incremental one from the cursor the
finished pass left, or a key scan when one is due), so a run that completes ends as current as a run that
was never interrupted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import dlt
import pyarrow as pa

from canonry.providers import spec
from canonry.raw import RAW_SCHEMA, BoundaryDedup
from canonry.runtime import RESUME_KEY, ConnectionRuntime, until_stopped

# `state["resume"]` of a resource whose finished pass began in an earlier run: the pipeline runs the
# resource once more in this run (it still has a `resume`), and that run starts a fresh pass.
CATCH_UP = "catch_up"


class ResumablePass:
    """One pass of a resumable resource, continued from `state["resume"]` or begun anew.

    `begin(started)` returns what the source keeps about a new pass (JSON-able: full or incremental, lower
    bound, …); the helper adds `started` (ISO), `run` and `position`. Sources keep their own in-flight
    memory in `resume` (a dict) and read `started` from here: extraction times and settle points of a pass
    are those of its first page, whichever run fetches the rest."""

    def __init__(self, runtime: ConnectionRuntime, name: str, state: dict,
                 begin: Callable[[datetime], dict]) -> None:
        # An object the spec does not list runs its pass to completion in one batch (same code, no bound).
        self.bounded = name in spec(runtime.provider).resumable
        self.runtime, self.name, self.state = runtime, name, state
        saved = state.get(RESUME_KEY)
        self.resumed = bool(saved) and CATCH_UP not in saved
        if self.resumed:
            self.resume: dict = saved
        else:
            started = datetime.now(UTC)
            self.resume = {**begin(started), "started": started.isoformat(), "run": runtime.run_id,
                           "position": None, "emitted": {}}
        self.started = datetime.fromisoformat(self.resume["started"])
        self.finished = False
        self._tables: dict[str | None, list[pa.Table]] = {}
        self._dedups: dict[str, BoundaryDedup] = {}

    @property
    def full(self) -> bool:
        return bool(self.resume.get("full"))

    def pages(self, read: Callable[[Any], Iterable[tuple[Any, Any]]]) -> Iterator[Any]:
        """The pages of this checkpoint: from the saved position while the page budget lasts. A provider
        stop (`STOP_CLASSES`) ends them cleanly, keeping the pages read and their position."""
        budget = self.runtime.page_budget() if self.bounded else None
        for page, following in until_stopped(self.runtime, read(self.resume["position"])):
            self.resume["position"] = following
            yield page
            if following is None:
                self.finished = self.runtime.interrupted is None
                return
            if budget is not None and not budget.take():
                return

    def dedup(self, track_from: datetime, key: str = "seen") -> BoundaryDedup:
        """The pass's boundary de-duplication (state key `key`), with what earlier checkpoints emitted."""
        dedup = BoundaryDedup(self.state, track_from=track_from, key=key)
        dedup.emitted = dict(self.resume["emitted"].get(key, {}))
        self._dedups[key] = dedup
        return dedup

    def add(self, table: pa.Table, table_name: str | None = None) -> None:
        """A page for this checkpoint (`table_name`: another raw table than the resource's own)."""
        if table.num_rows:
            self._tables.setdefault(table_name, []).append(table)

    def commit(self) -> Iterator[Any]:
        """Where to continue (or that the pass is done) into the resource state, and this checkpoint's pages
        as one table per raw table: dlt commits both in one load package."""
        for key, dedup in self._dedups.items():
            self.resume["emitted"][key] = dict(dedup.emitted)
        if not self.finished and not self.bounded:
            self.state.pop(RESUME_KEY, None)   # stopped: the whole pass is read again next run
        elif not self.finished:
            self.state[RESUME_KEY] = self.resume
        elif self.resume["run"] != self.runtime.run_id and self.bounded:
            self.state[RESUME_KEY] = {CATCH_UP: True}
        else:
            self.state.pop(RESUME_KEY, None)
        if not self._tables:
            # An empty item still carries the state: the package commits the new position.
            yield RAW_SCHEMA.empty_table()
        for table_name, tables in self._tables.items():
            table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
            yield table if table_name is None else dlt.mark.with_table_name(table, table_name)
