"""Lever sandbox control: mutations through the control endpoint, signed webhooks, the truth."""


from __future__ import annotations

import json
import random
import secrets
from datetime import datetime, timedelta

from canonry.sandbox.collection import Entry
from canonry.sandbox.engine import utcnow
from canonry.sandbox.lever.data import (
    ARCHIVE_REASONS,
    FUTURE,
    HIRED_REASON,
    OFFER_STATUSES,
    POSTING_STATES,
    STAGES,
    ms,
    signature,
    uid,
)

PAGE_MAX = 100
class LeverControl:
    """Changes records between syncs, as users of Lever would, and notifies the webhook."""

    # -- control ------------------------------------------------------------------------------
    def mutate(self, object_name: str, action: str, count: int, rng: random.Random,
               ids: list[str] | None) -> list[str]:
        if object_name not in ("opportunities", "postings", "users", "interviews", "offers"):
            raise KeyError(f"{object_name} (read-only in this sandbox)")
        if object_name in ("postings", "users") and action in ("delete", "restore"):
            raise KeyError(f"{object_name} cannot be {action}d in Lever (close or deactivate it instead)")
        collection = self.collections[object_name]
        if action == "create":
            return [self._create(object_name, rng) for _ in range(count)]
        eligible = None
        if object_name in ("interviews", "offers"):  # only children of opportunities that still exist
            alive_opps = self.collections["opportunities"]
            eligible = lambda i: alive_opps.is_alive(collection.get(i).record["_opp"])  # noqa: E731
        indexes = collection.targets(action, count, rng, ids, eligible)
        done = []
        for index in indexes:
            now = utcnow()  # every change gets its own time, as real edits do
            if action == "update":
                self._update(object_name, index, rng, now)
            elif action == "delete":
                collection.delete(index, now)
                if object_name == "opportunities":
                    self._webhook("candidateDeleted", self._opp_event(index, deletedBy=uid("users", 0)))
                else:
                    self._child_changed(object_name, index, now, "Deleted")
            elif action == "restore":
                collection.restore(index, now)
                if object_name in ("interviews", "offers"):
                    self._child_changed(object_name, index, now, "Updated")
            done.append(collection.id_of(index))
        return done

    def _create(self, object_name: str, rng: random.Random) -> str:
        collection = self.collections[object_name]
        now = utcnow()
        if object_name == "opportunities":
            opportunities = collection
            existing = [i for i, _ in opportunities.iter_alive()]
            attach = rng.random() < 0.3 and existing

            def make(index: int) -> dict:
                record = dict(self._opportunity(index % max(1, opportunities.base_size)))
                record["_contact"] = opportunities.get(rng.choice(existing)).record["_contact"] if attach else index
                record["archived"] = None
                record["stage"], record["_stage_n"] = STAGES[3][0], 3
                record["origin"] = "applied"
                return record
            index = opportunities.create(make, now)
            contact = opportunities.get(index).record["_contact"]
            if contact != index:
                self.contact_extra.setdefault(contact, []).append(index)
            self._webhook("applicationCreated", {**self._opp_event(index),
                                                 "applicationId": uid("applications", index)})
            return uid("opportunities", index)
        if object_name in ("interviews", "offers"):
            alive = [i for i, _ in self.collections["opportunities"].iter_alive()]
            opp = rng.choice(alive)
            body = self._interview_body if object_name == "interviews" else self._offer_body
            index = collection.create(lambda i: body(i, opp), now)
            self.extra_children[object_name].setdefault(opp, []).append(index)
            self._child_changed(object_name, index, now, "Created")
            return collection.id_of(index)
        factory = self._posting if object_name == "postings" else self._user
        index = collection.create(lambda i: factory(i), now)
        return collection.id_of(index)

    def _update(self, object_name: str, index: int, rng: random.Random, now: datetime) -> None:
        collection = self.collections[object_name]
        stamp = now.strftime("%H%M%S%f")
        if object_name == "opportunities":
            choice = rng.choice(("stage", "archive", "tags", "contact"))
            before = collection.get(index).record

            def change(record: dict) -> dict:
                record["lastInteractionAt"] = ms(now)
                if choice == "stage":
                    n = (record["_stage_n"] + 1) % len(STAGES)
                    record["stage"], record["_stage_n"] = STAGES[n][0], n
                elif choice == "archive":
                    if record["archived"] is None:
                        reason = rng.choice(ARCHIVE_REASONS)[0]
                        record["archived"] = {"archivedAt": ms(now), "reason": reason}
                    else:
                        record["archived"] = None
                elif choice == "tags":
                    record["tags"] = sorted({*record["tags"], f"updated-{stamp}"})
                return record
            collection.update(index, change, now)
            if choice == "contact":
                contact = before["_contact"]
                self.contact_changes.setdefault(contact, {})["headline"] = f"Updated headline {stamp}"
                for sibling in self.opportunities_of_contact(contact):
                    if sibling != index and collection.is_alive(sibling):
                        collection.update(sibling, lambda r: r, now)
            event = {"stage": "candidateStageChange", "archive": "candidateArchiveChange"}.get(choice,
                                                                                             "contactUpdated")
            after = collection.get(index).record
            data = self._opp_event(index)
            if choice == "stage":
                data.update(fromStageId=before["stage"], toStageId=after["stage"])
            elif choice == "archive":
                data.update(fromArchived=before["archived"], toArchived=after["archived"])
                if after["archived"] and after["archived"]["reason"] == HIRED_REASON:
                    self._webhook("candidateHired", self._opp_event(index))
            self._webhook(event, data)
            return
        if object_name == "postings":
            collection.update(index, lambda r: {**r, "text": f"{r['text'].split(' [')[0]} [updated {stamp}]",
                                                "state": rng.choice(POSTING_STATES)}, now)
            return
        if object_name == "users":
            collection.update(index, lambda r: {**r, "jobTitle": f"updated {stamp}",
                                                "deactivatedAt": None if r["deactivatedAt"] else ms(now)}
                              if index else {**r, "jobTitle": f"updated {stamp}"}, now)
            return
        if object_name == "interviews":
            collection.update(index, lambda r: {**r, "subject": f"Interview (moved {stamp})",
                                                "date": ms(FUTURE + timedelta(days=rng.randint(1, 60)))}, now)
        else:
            collection.update(index, lambda r: {**r, "status": rng.choice(OFFER_STATUSES)}, now)
        self._child_changed(object_name, index, now, "Updated")

    def _child_changed(self, kind: str, index: int, now: datetime, verb: str) -> None:
        """An interview/offer changed: its opportunity's updatedAt and lastInteractionAt move."""
        opp = self.collections[kind].get(index).record["_opp"]
        opportunities = self.collections["opportunities"]
        if opportunities.is_alive(opp):
            opportunities.update(opp, lambda r: {**r, "lastInteractionAt": ms(now)}, now)
        if kind == "interviews":
            self._webhook(f"interview{verb}", {**self._opp_event(opp), "interviewId": uid("interviews", index),
                                               "panelId": self.collections["interviews"].get(index).record["panel"]})

    def _opp_event(self, index: int, **extra) -> dict:
        contact = self.collections["opportunities"].get(index).record["_contact"]
        return {"opportunityId": uid("opportunities", index), "candidateId": uid("contacts", contact),
                "contactId": uid("contacts", contact), **extra}

    def _webhook(self, event: str, data: dict) -> None:
        """Deliver a signed webhook in Lever's format (retried up to 5 times, in the background)."""
        url = self.state.webhook_url
        if not url:
            return
        triggered_at = ms(utcnow())
        token = secrets.token_hex(16)
        body = {"triggeredAt": triggered_at, "event": event, "token": token,
                "signature": signature(self.signature_token, token, triggered_at), "data": data}
        self.webhooks_sent.append(body)

        raw = json.dumps(body).encode()
        self.webhook_sender.send(url, lambda attempt: (raw, {"Content-Type": "application/json"}), {"event": event})

    # -- truth: children carry their opportunity, and go with it -------------------------------
    def truth_record(self, name: str, index: int, entry: Entry) -> dict:
        record = self.render(name, index, entry)
        if name in ("interviews", "offers"):
            record["opportunityId"] = uid("opportunities", entry.record["_opp"])  # truth only: the API omits it
        return record

    def truth_deleted(self, name: str, index: int, entry: Entry) -> bool:
        if name in ("interviews", "offers") and not self.collections["opportunities"].is_alive(entry.record["_opp"]):
            return True
        return entry.deleted_at is not None

    def truth_time(self, entry: Entry, record: dict) -> int | None:
        return ms(entry.modified_at)
