"""Workable sandbox control: what users of Workable change between syncs (the control endpoint's mutate).

Workable keeps what a recruiter removes: `delete` disqualifies a candidate, archives a job, cancels an event
and deactivates a member (`restore` undoes it). Stages and departments are the account's configuration,
read-only here."""

from __future__ import annotations

import random
from datetime import datetime

from canonry.sandbox.engine import utcnow
from canonry.sandbox.workable.data import DISQUALIFICATION_REASONS, JOB_STATES, STAGES

MUTABLE = ("candidates", "jobs", "events", "members")


class WorkableControl:

    def mutate(self, object_name: str, action: str, count: int, rng: random.Random,
               ids: list[str] | None) -> list[str]:
        if object_name not in MUTABLE:
            raise KeyError(f"{object_name} (account configuration, read-only in this sandbox)")
        collection = self.collections[object_name]
        if action == "create":
            created = [self._create(object_name, rng) for _ in range(count)]
            if object_name == "candidates":
                for index in created:
                    self.notify_candidate("candidate_created", index)
            return [collection.id_of(i) for i in created]
        eligible = None
        if action in ("delete", "restore"):
            flag = {"candidates": lambda r: r["disqualified"], "jobs": lambda r: r["state"] == "archived",
                    "events": lambda r: r["cancelled"], "members": lambda r: not r["active"]}[object_name]
            want = action == "restore"
            eligible = lambda i: flag(collection.get(i).record) == want  # noqa: E731
            if object_name == "members":   # the account owner stays
                eligible = lambda i, e=eligible: i != 0 and e(i)  # noqa: E731
            if object_name == "candidates" and not want:   # a hired candidate is not disqualified
                eligible = lambda i, e=eligible: collection.get(i).record["stage"] != "hired" and e(i)  # noqa: E731
        # `restore` picks among alive records too: nothing is ever hard-deleted in Workable.
        indexes = collection.targets("update", count, rng, ids, eligible)
        for index in indexes:
            now = utcnow()   # every change gets its own time, as real edits do
            collection.update(index, lambda r, at=now: self._changed(object_name, action, r, rng, at), now)
            if object_name == "candidates" and action == "update":   # an update moves the candidate a stage
                self.notify_candidate("candidate_moved", index)
        return [collection.id_of(i) for i in indexes]

    def _create(self, object_name: str, rng: random.Random) -> int:
        collection = self.collections[object_name]
        now = utcnow()
        if object_name == "candidates":
            jobs = self.collections["jobs"]
            published = [i for i, e in jobs.iter_alive() if e.record["state"] == "published"] or [0]
            job = rng.choice(published)

            def make(index: int) -> dict:
                record = self._candidate(index)
                record.update(_job=job, stage="applied", disqualified=False, withdrew=False,
                              disqualification_reason=None, sourced=False)
                return record
            return collection.create(make, now)
        if object_name == "events":
            candidate = rng.randrange(self.collections["candidates"].size)
            return collection.create(lambda i: {**self._event(i), "_candidate": candidate, "cancelled": False},
                                     now)
        if object_name == "jobs":
            return collection.create(lambda i: {**self._job(i), "state": "draft"}, now)
        return collection.create(lambda i: {**self._member(i), "active": True}, now)

    def _changed(self, object_name: str, action: str, record: dict, rng: random.Random, now: datetime) -> dict:
        stamp = now.strftime("%H%M%S%f")
        restore = action == "restore"
        if object_name == "candidates":
            if action in ("delete", "restore"):
                reason = None if restore else rng.choice(DISQUALIFICATION_REASONS)
                record.update(disqualified=not restore, disqualification_reason=reason,
                              withdrew=reason == "Withdrew")
            else:
                position = next(i for i, s in enumerate(STAGES) if s[0] == record["stage"])
                record["stage"] = STAGES[min(position + 1, len(STAGES) - 1)][0]
                record["headline"] = f"{record['headline'].split(' [')[0]} [updated {stamp}]"
                if record["stage"] == "hired" and not record.get("_hired_at"):
                    record.update(disqualified=False, disqualification_reason=None, withdrew=False,
                                  _hired_at=now.date().isoformat())
            return record
        if object_name == "jobs":
            if action in ("delete", "restore"):
                record["state"] = "published" if restore else "archived"
            else:
                record["title"] = f"{record['title'].split(' [')[0]} [updated {stamp}]"
                record["state"] = rng.choice(JOB_STATES[:-1])
            return record
        if object_name == "events":
            if action in ("delete", "restore"):
                record["cancelled"] = not restore
            else:
                record["title"] = f"Interview (moved {stamp})"
            return record
        if action in ("delete", "restore"):
            record["active"] = restore
        else:
            record["headline"] = f"updated {stamp}"
        return record

    # -- truth: what the canonical layer must show -----------------------------------------------
    def truth_deleted(self, name: str, index: int, entry) -> bool:
        """A cancelled event is a deleted interview; everything else Workable keeps (flags, not deletes)."""
        return entry.deleted_at is not None or (name == "events" and entry.record["cancelled"])
