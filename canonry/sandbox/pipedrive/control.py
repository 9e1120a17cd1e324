"""Pipedrive sandbox control: mutations through the engine's control endpoint, webhooks v2, the truth."""


from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime

from canonry.sandbox.collection import Entry
from canonry.sandbox.engine import (
    utcnow,
)
from canonry.sandbox.pipedrive.data import rfc3339
from canonry.sandbox.webhooks import pipedrive_event


class PipedriveControl:
    """Changes records between syncs, as users of Pipedrive would, and notifies the webhook."""

    # -- control ------------------------------------------------------------------------------
    def mutate(self, object_name: str, action: str, count: int, rng: random.Random,
               ids: list[str] | None) -> list[str]:
        collection = self.collections[object_name]
        if action == "create":
            out = []
            for _ in range(count):
                index = collection.create(self._fresh(object_name), utcnow())
                out.append(collection.id_of(index))
                self._notify(object_name, "create", index, None)
            return out
        indexes = collection.targets(action, count, rng, ids)
        done = []
        for index in indexes:
            now = utcnow()
            previous = self.render(object_name, index, collection.get(index)) if self.state.webhook_url else None
            if action == "update":
                collection.update(index, lambda rec, t=now: self._changed(object_name, rec, t), now)
            elif action == "delete":
                collection.delete(index, now)
            elif action == "restore":
                collection.restore(index, now)
            done.append(collection.id_of(index))
            self._notify(object_name, {"update": "change", "restore": "create"}.get(action, action), index, previous)
        return done

    WEBHOOK_ENTITIES = {"persons": "person", "organizations": "organization", "deals": "deal",
                        "activities": "activity", "notes": "note", "leads": "lead"}

    def _notify(self, object_name: str, action: str, index: int, previous: dict | None) -> None:
        url, entity = self.state.webhook_url, self.WEBHOOK_ENTITIES.get(object_name)
        if not url or entity is None:
            return
        collection = self.collections[object_name]
        data = None if action == "delete" else self.render(object_name, index, collection.get(index))
        pipedrive_event(self.webhooks, url, self.webhook_user, self.webhook_password, action=action, entity=entity,
                        entity_id=collection.id_of(index), data=data, previous=previous)

    def _fresh(self, object_name: str) -> Callable[[int], dict]:
        def make(index: int) -> dict:
            base = self.collections[object_name].factory(index % max(1, self.sizes[object_name]))
            record = json.loads(json.dumps(base))
            if object_name == "persons":
                first, last = self.faker["persons"].person(index)
                record.update(first_name=first, last_name=f"{last} {index}", name=f"{first} {last} {index}")
                record["emails"] = [{"value": self.faker["persons"].email(index, first, last), "primary": True,
                                     "label": "work"}]
            elif object_name == "organizations":
                record["name"] = self.faker["organizations"].company(index)
            elif object_name == "deals":
                record["title"] = f"New deal {index}"
            elif object_name == "leads":
                record["title"] = f"New lead {index}"
            elif object_name in ("activities", "notes"):
                key = "subject" if object_name == "activities" else "content"
                record[key] = f"{record[key]} (new {index})"
            elif object_name == "users":
                record["name"] = f"New user {index}"
            return record
        return make

    @staticmethod
    def _changed(object_name: str, record: dict, now: datetime) -> dict:
        stamp = now.strftime("%H%M%S%f")
        if object_name == "persons":
            record["last_name"] = f"Updated{stamp}"
            record["name"] = f"{record.get('first_name') or ''} {record['last_name']}".strip()
        elif object_name in ("organizations", "users", "stages", "pipelines"):
            record["name"] = f"{record['name'].split(' (updated')[0]} (updated {stamp})"
        elif object_name in ("deals", "leads"):
            record["title"] = f"{record['title'].split(' (updated')[0]} (updated {stamp})"
            if object_name == "deals":
                record["value"] = round(float(record.get("value") or 0) + 100.5, 2)
        elif object_name == "activities":
            record["subject"] = f"updated {stamp}"
            record["done"] = not record.get("done")
            record["marked_as_done_time"] = rfc3339(now) if record["done"] else None
        elif object_name == "notes":
            record["content"] = f"<p>updated {stamp}</p>"
        return record

    def truth_time(self, entry: Entry, record: dict) -> str | None:
        return record.get("update_time") or record.get("modified")
