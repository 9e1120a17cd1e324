"""Greenhouse sandbox control: mutations through the control endpoint, the truth, signed webhooks."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from datetime import datetime

import requests

from canonry.sandbox.engine import utcnow
from canonry.sandbox.greenhouse.data import OFFSETS, WEBHOOK_EVENTS, sign, webhook_body


class GreenhouseControl:
    """Changes records between syncs, as users of Greenhouse would, and notifies the webhook."""

    # -- control --------------------------------------------------------------------------------
    def mutate(self, object_name: str, action: str, count: int, rng: random.Random,
               ids: list[str] | None) -> list[str]:
        collection = self.collections[object_name]
        done: list[str] = []
        events: list[tuple[str, dict]] = []
        if action == "create":
            for _ in range(count):
                index = collection.create(self._fresh(object_name), utcnow())
                done.append(collection.id_of(index))
                events.append((action, self.render(object_name, index, collection.get(index))))
        else:
            indexes = collection.targets(action, count, rng, ids)
            for index in indexes:
                now = utcnow()  # every change gets its own time, as real edits do
                if action == "update":
                    collection.update(index, lambda rec, i=index, t=now: self._changed(object_name, rec, i, t), now)
                elif action == "delete":
                    if not collection.is_alive(index):
                        continue
                    body = self.render(object_name, index, collection.get(index))
                    collection.delete(index, now)
                    if object_name == "candidates":
                        body = {"person": {**body, "deleted_application_ids": self._cascade(body["id"], now)}}
                    events.append((action, body))
                    done.append(collection.id_of(index))
                    continue
                elif action == "restore":
                    collection.restore(index, now)
                events.append((action, self.render(object_name, index, collection.get(index))))
                done.append(collection.id_of(index))
        for event_action, payload in events:
            self._send_webhook(object_name, event_action, payload)
        return done

    def _cascade(self, candidate_id: int, now: datetime) -> list[int]:
        """Deleting a candidate deletes its applications, silently (no webhook, no feed)."""
        applications = self.collections["applications"]
        candidate_index = candidate_id - OFFSETS["candidates"] - 1
        size = self.sizes["candidates"]
        indexes = set(range(candidate_index, applications.base_size, size)) if candidate_index < size else set()
        indexes |= {i for i, e in applications.changes.items() if e.record.get("candidate_id") == candidate_id}
        deleted = []
        for index in sorted(indexes):
            entry = applications.get(index)
            if entry.deleted_at is None and entry.record.get("candidate_id") == candidate_id:
                applications.delete(index, now)
                deleted.append(int(applications.id_of(index)))
        return deleted

    def _fresh(self, object_name: str) -> Callable[[int], dict]:
        base_size = self.sizes[object_name]
        factory = self.collections[object_name].factory

        def make(index: int) -> dict:
            record = json.loads(json.dumps(factory(index % base_size)))
            if object_name == "candidates":
                first, last = self.faker["candidates"].person(index)
                record.update(first_name=first, last_name=f"{last} New{index}")
                record["email_addresses"] = [{"value": self.faker["candidates"].email(index, first, last),
                                              "type": "personal"}]
            elif object_name == "jobs":
                record["name"] = f"New job {index}"
            elif object_name in ("departments", "offices"):
                record["name"] = f"{record['name']} {index}"
            elif object_name == "users":
                first, last = self.faker["users"].person(index)
                email = self.faker["users"].email(index, first, last, "hiring.example.com")
                record.update(first_name=first, last_name=last, name=f"{first} {last}",
                              primary_email_address=email, emails=[email])
            return record
        return make

    @staticmethod
    def _changed(object_name: str, record: dict, index: int, now: datetime) -> dict:
        stamp = now.strftime("%H%M%S%f")
        if object_name == "candidates":
            record["title"] = f"updated {stamp}"
        elif object_name == "applications":
            record["status"] = "hired" if record["status"] != "hired" else "active"
            record["current_stage_id"] = None if record["status"] == "hired" else record["current_stage_id"]
        elif object_name == "jobs":
            record["name"] = f"updated {stamp}"
        elif object_name == "job_stages":
            record["name"] = f"updated {stamp}"
        elif object_name == "scheduled_interviews":
            record["location"] = f"updated {stamp}"
        elif object_name == "offers":
            record["version"] = record["version"] + 1
            record["status"] = "accepted"
            record["_sent"], record["_resolved"] = True, True
        elif object_name in ("departments", "offices"):
            record["name"] = f"updated {stamp}"
        elif object_name == "users":
            record["last_name"] = f"updated {stamp}"
            record["name"] = f"{record['first_name']} {record['last_name']}"
        return record

    # -- webhooks -------------------------------------------------------------------------------
    def _send_webhook(self, object_name: str, action: str, payload: dict) -> None:
        event = WEBHOOK_EVENTS.get((object_name, action))
        url = self.state.webhook_url
        if event is None or not url:
            return
        body = webhook_body(event, payload if object_name == "candidates" and action == "delete"
                            else {object_name.rstrip("s") if object_name != "scheduled_interviews"
                                  else "interview": payload})
        event_id = str(uuid.uuid4())
        headers = {"Content-Type": "application/json", "Signature": sign(self.webhook_secret, body),
                   "Greenhouse-Event-ID": event_id, "User-Agent": "Greenhouse-Webhooks (sandbox)"}
        delivery = {"event_id": event_id, "action": event, "url": url, "status": None}
        try:
            delivery["status"] = requests.post(url, data=body, headers=headers, timeout=5).status_code
        except requests.RequestException as exc:
            delivery["error"] = type(exc).__name__
        self.webhook_deliveries.append(delivery)
