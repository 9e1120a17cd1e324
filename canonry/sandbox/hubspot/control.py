"""HubSpot sandbox control: mutations through the control endpoint, app webhooks, the truth."""


from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime

from canonry.sandbox.collection import Entry
from canonry.sandbox.engine import (
    utcnow,
)
from canonry.sandbox.hubspot.data import OBJECT_TYPES, iso
from canonry.sandbox.webhooks import hubspot_batch


class HubSpotControl:
    """Changes records between syncs, as users of HubSpot would, and notifies the app's webhook."""

    # -- control ------------------------------------------------------------------------------
    def mutate(self, object_name: str, action: str, count: int, rng: random.Random,
               ids: list[str] | None) -> list[str]:
        collection = self.collections[object_name]
        now = utcnow()
        if action == "create":
            factory = collection.factory
            done = [collection.id_of(collection.create(self._fresh(object_name, factory), now))
                    for _ in range(count)]
            self._notify(object_name, action, done)
            return done
        indexes = collection.targets(action, count, rng, ids)
        done = []
        for index in indexes:
            now = utcnow()  # every change gets its own time, as real edits do
            if action == "update":
                collection.update(index, lambda rec, i=index, t=now: self._changed(object_name, rec, i, t), now)
            elif action == "delete":
                collection.delete(index, now)
            elif action == "restore":
                collection.restore(index, now)
            done.append(collection.id_of(index))
        self._notify(object_name, action, done)
        return done

    WEBHOOK_TYPES = {"contacts": "contact", "companies": "company", "deals": "deal"}
    WEBHOOK_ACTIONS = {"create": "creation", "update": "propertyChange", "delete": "deletion", "restore": "restore"}

    def _notify(self, object_name: str, action: str, ids: list[str]) -> None:
        """One batch per mutation, as HubSpot batches the events of a moment."""
        url, kind = self.state.webhook_url, self.WEBHOOK_TYPES.get(object_name)
        if not url or kind is None or not ids:
            return
        occurred = int(utcnow().timestamp() * 1000)
        events = [{"eventId": next(self.event_ids), "subscriptionId": 1, "portalId": 62515, "appId": 54321,
                   "occurredAt": occurred, "subscriptionType": f"{kind}.{self.WEBHOOK_ACTIONS[action]}",
                   "objectId": int(i), "changeSource": "API"} for i in ids]
        hubspot_batch(self.webhooks, url, self.client_secret, events)

    def _fresh(self, object_name: str, factory: Callable[[int], dict]) -> Callable[[int], dict]:
        def make(index: int) -> dict:
            if object_name == "owners":
                return self._owner(index)
            base = factory(index % max(1, self.state.scale))
            record = json.loads(json.dumps(base))
            props = record["properties"]
            if object_name == "contacts":
                first, last = self.faker["contacts"].person(index)
                props.update(firstname=first, lastname=last, email=self.faker["contacts"].email(index, first, last))
            elif object_name == "companies":
                props["name"] = self.faker["companies"].company(index)
            elif object_name == "deals":
                props["dealname"] = f"New deal {index}"
            return record
        return make

    @staticmethod
    def _changed(object_name: str, record: dict, index: int, now: datetime) -> dict:
        if object_name == "owners":
            record["lastName"] = record["lastName"] + " (updated)"
            return record
        props = record["properties"]
        stamp = now.strftime("%H%M%S%f")
        field_name = {"contacts": "jobtitle", "companies": "description", "deals": "description",
                      "notes": "hs_note_body", "tasks": "hs_task_body", "calls": "hs_call_body",
                      "meetings": "hs_meeting_body", "emails": "hs_email_text"}[object_name]
        props[field_name] = f"updated {stamp}"
        return record

    def truth_record(self, name: str, index: int, entry: Entry) -> dict:
        if name == "owners":
            return self.render_owner(index, entry)
        return self.render(name, index, entry, list(entry.record["properties"]) + list(OBJECT_TYPES[name][2]))

    def truth_time(self, entry: Entry, record: dict) -> str:
        return iso(entry.modified_at)
