"""Ashby sandbox control: what `delete` / `restore` mean per object, mutations, signed webhooks, the truth."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from datetime import datetime

from canonry.sandbox.ashby.data import ARCHIVE_REASONS, SPECS
from canonry.sandbox.collection import Entry
from canonry.sandbox.engine import utcnow
from canonry.sandbox.kit import iso_millis


class AshbyControl:
    """Changes records between syncs, as users of Ashby would, and notifies the webhook."""

    # -- mutations ----------------------------------------------------------------------------
    def mutate(self, object_name: str, action: str, count: int, rng: random.Random,
               ids: list[str] | None) -> list[str]:
        collection = self.collections[object_name]
        if action == "create":
            done = []
            for _ in range(count):
                index = collection.create(lambda i: self._fresh(object_name, i, rng), utcnow())
                done.append(collection.id_of(index))
                self._notify(object_name, "create", index)
            return done
        if ids is not None:
            indexes = [collection.index_of(i) for i in ids]
            if None in indexes:
                raise KeyError(ids[indexes.index(None)])
        else:
            pool = [i for i in range(collection.size) if self._eligible(object_name, action, collection.get(i))]
            indexes = rng.sample(pool, min(count, len(pool)))
        done = []
        for index in indexes:
            now = utcnow()  # every change gets its own time, as real edits do
            if action == "update":
                collection.update(index, lambda rec, t=now: self._changed(object_name, rec, t), now)
            elif action == "delete":
                if object_name == "candidates":
                    collection.delete(index, now)
                else:
                    collection.update(index, lambda rec, t=now: self._archived(object_name, rec, t, rng), now)
            elif action == "restore":
                if collection.get(index).deleted_at is not None:
                    collection.restore(index, now)
                else:
                    collection.update(index, lambda rec, i=index: self._restored(object_name, rec, i), now)
            else:
                raise KeyError(action)
            done.append(collection.id_of(index))
            self._notify(object_name, action, index)
        return done

    def _eligible(self, name: str, action: str, entry: Entry) -> bool:
        archived = self._archived_state(name, entry)
        if action == "restore":
            return archived
        return entry.deleted_at is None and not (action == "delete" and archived)

    @staticmethod
    def _archived_state(name: str, entry: Entry) -> bool:
        if entry.deleted_at is not None:
            return True
        record = entry.record
        return {
            "applications": record.get("status") == "Archived",
            "jobs": record.get("status") == "Archived",
            "interview_schedules": record.get("status") == "Cancelled",
            "offers": record.get("offerStatus") == "OfferCancelled",
            "users": not record.get("isEnabled", True),
        }.get(name, bool(record.get("isArchived")))

    def _fresh(self, name: str, index: int, rng: random.Random) -> dict:
        """A new record: generated like a base record; links point at existing records."""
        if name == "applications":
            candidate = rng.randrange(self.collections["candidates"].base_size)
            record = self._application(index, candidate=candidate)
            record.update(status="Active", archiveReason=None, archivedAt=None)
            return record
        if name == "interview_schedules":
            record = self._schedule(index % max(1, self.sizes["interview_schedules"]))
            record["status"] = "Scheduled"
            for event in record["interviewEvents"]:
                event["interviewScheduleId"] = self.collections[name].id_of(index)
            return record
        if name == "offers":
            record = self._offer(index % max(1, self.sizes["offers"]))
            record.update(offerStatus="WaitingOnApprovalStart", acceptanceStatus="Created", decidedAt=None)
            return record
        factory = self.collections[name].factory
        if name in ("departments", "locations", "archive_reasons", "sources", "interview_plans",
                    "interview_stages"):
            record = json.loads(json.dumps(factory(index % self.sizes[name])))
            key = "text" if name == "archive_reasons" else "title" if name in ("sources", "interview_plans",
                                                                            "interview_stages") else "name"
            record[key] = f"{record[key]} {index}"
            return record
        return factory(index)

    @staticmethod
    def _changed(name: str, record: dict, now: datetime) -> dict:
        stamp = now.strftime("%H%M%S%f")
        if name == "candidates":
            record["position"] = f"updated {stamp}"
        elif name == "applications":
            record["source"] = {**record["source"], "title": f"updated {stamp}"}
        elif name == "jobs":
            record["title"] = f"updated {stamp}"
        elif name == "interview_schedules":
            record["status"] = "Complete" if record["status"] != "Complete" else "WaitingOnFeedback"
            record["interviewEvents"] = [{**e, "location": f"updated {stamp}"} for e in record["interviewEvents"]]
        elif name == "offers":
            record["offerStatus"], record["acceptanceStatus"] = "CandidateAccepted", "Accepted"
            record["decidedAt"] = iso_millis(now)
        elif name == "users":
            record["lastName"] = f"{record['lastName']} (updated {stamp})"
        elif name == "archive_reasons":
            record["text"] = f"updated {stamp}"
        elif name in ("sources", "interview_plans", "interview_stages"):
            record["title"] = f"updated {stamp}"
        else:
            record["name"] = f"updated {stamp}"
        return record

    def _archived(self, name: str, record: dict, now: datetime, rng: random.Random) -> dict:
        if name == "applications":
            record["status"] = "Archived"
            record["archiveReason"] = self._archive_reason_brief(rng.randrange(len(ARCHIVE_REASONS) - 1))
            record["archivedAt"] = iso_millis(now)
        elif name == "jobs":
            record["status"] = "Archived"
            record["closedAt"] = record.get("closedAt") or iso_millis(now)
        elif name == "interview_schedules":
            record["status"] = "Cancelled"
        elif name == "offers":
            record["offerStatus"], record["acceptanceStatus"] = "OfferCancelled", "Cancelled"
            record["decidedAt"] = iso_millis(now)
        elif name == "users":
            record["isEnabled"] = False
        else:
            record["isArchived"] = True
        return record

    def _restored(self, name: str, record: dict, index: int) -> dict:
        if name == "applications":
            record.update(status="Active", archiveReason=None, archivedAt=None)
        elif name == "jobs":
            record.update(status="Open", closedAt=None)
        elif name == "interview_schedules":
            record["status"] = "Scheduled"
        elif name == "offers":
            record.update(offerStatus="WaitingOnCandidateResponse", acceptanceStatus="WaitingOnResponse",
                          decidedAt=None)
        elif name == "users":
            record["isEnabled"] = True
        else:
            record["isArchived"] = False
        return record

    # -- webhooks -----------------------------------------------------------------------------
    WEBHOOK_ACTIONS = {
        ("candidates", "create"): "candidateCreate", ("candidates", "update"): "candidateUpdate",
        ("candidates", "delete"): "candidateDelete", ("candidates", "restore"): "candidateUpdate",
        ("applications", "create"): "applicationSubmit", ("applications", "update"): "applicationUpdate",
        ("applications", "delete"): "applicationUpdate", ("applications", "restore"): "applicationUpdate",
        ("jobs", "create"): "jobCreate", ("jobs", "update"): "jobUpdate", ("jobs", "delete"): "jobUpdate",
        ("jobs", "restore"): "jobUpdate",
        ("interview_schedules", "create"): "interviewScheduleCreate",
        ("offers", "create"): "offerCreate",
    }

    def _notify(self, name: str, action: str, index: int) -> None:
        url = self.state.webhook_url
        if not url:
            return
        event = self.WEBHOOK_ACTIONS.get((name, action))
        if event is None:
            prefix = SPECS[name].webhook or name.rstrip("s")
            event = f"{prefix}{'Create' if action == 'create' else 'Update'}"
        collection = self.collections[name]
        entry = collection.get(index)
        data_key = {"applications": "application", "candidates": "candidate", "jobs": "job",
                    "interview_schedules": "interviewSchedule", "offers": "offer"}.get(name, name)
        data = {data_key: {"id": collection.id_of(index)} if entry.deleted_at is not None
                else self.render(name, index, entry)}
        raw = json.dumps({"action": event, "data": data}, separators=(",", ":")).encode()
        signature = "sha256=" + hmac.new(self.webhook_secret.encode(), raw, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "Ashby-Signature": signature, "User-Agent": "Ashby-Webhook"}
        # In the background, retried like Ashby does (ASHBY_ATTEMPTS, ASHBY_NO_RETRY; back-off compressed).
        delivery = self.webhook_sender.send(url, lambda attempt: (raw, headers),
                                            {"action": event, "body": raw.decode(), "signature": signature})
        with self.lock:
            self.webhooks_sent.append(delivery)

    def truth_deleted(self, name: str, index: int, entry: Entry) -> bool:
        return self.is_deleted(name, entry)
