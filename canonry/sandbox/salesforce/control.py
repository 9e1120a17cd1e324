"""Salesforce sandbox control: limits, recycle-bin purge, write failures and log, token expiry, mutations
through the engine's control endpoint (with Outbound Messages), the truth."""


from __future__ import annotations

import random
from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import Response

from canonry.sandbox.collection import Entry
from canonry.sandbox.engine import json_response, utcnow
from canonry.sandbox.kit import read_json
from canonry.sandbox.salesforce.objects import (
    ORG_ID,
    sf_datetime,
)
from canonry.sandbox.salesforce.writes import FailureRule
from canonry.sandbox.webhooks import salesforce_outbound

USER_UPDATE_FIELD = {"Account": "Description", "Contact": "Title", "Lead": "Title", "Opportunity": "Description",
                     "User": "Title", "Task": "Description", "Event": "Description", "Note": "Body",
                     "OpportunityStage": "Description"}
class SalesforceControl:
    """The sandbox-only controls of the Salesforce simulator."""

    # -- sandbox controls ---------------------------------------------------------------------
    async def control_limits(self, request: Request) -> Response:
        if request.method == "POST":
            body = await read_json(request) or {}
            with self.usage_lock:
                if "daily_limit" in body:
                    self.daily_limit = int(body["daily_limit"])
                if body.get("reset"):
                    self.api_used = 0
                if "used" in body:
                    self.api_used = int(body["used"])
        return json_response({"daily_limit": self.daily_limit, "used": self.api_used})

    async def control_purge(self, request: Request) -> Response:
        body = await read_json(request) or {}
        now = utcnow()
        names = [body["object"]] if body.get("object") else list(self.collections)
        for name in names:
            self.purged_before[name] = now
        return json_response({"purged_before": sf_datetime(now), "objects": names})

    async def control_write_failures(self, request: Request) -> Response:
        body = await read_json(request) or {}
        self.write_failures = [FailureRule(**rule) for rule in body.get("rules", [])]
        return json_response({"rules": [asdict(r) for r in self.write_failures]})

    async def control_writes(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.writes.clear()
        return json_response({"writes": list(self.writes)})

    async def control_custom_fields(self, request: Request) -> Response:
        """Relabel a custom field (`{object, name, label}`), as Setup or the Tooling API would: the API name stays."""
        body = await read_json(request) or {}
        field = self.custom.relabel(body.get("object", ""), body.get("name", ""), str(body.get("label", ""))) \
            if self.custom else None
        if field is None:
            return json_response({"error": "unknown custom field (or the simulator runs without custom_fields)"},
                                 404)
        return json_response(field.describe())

    async def control_expire_tokens(self, request: Request) -> Response:
        self.oauth.expire_all_access_tokens()
        return json_response({"expired": True})

    # -- engine control: mutate / truth -------------------------------------------------------
    def mutate(self, object_name: str, action: str, count: int, rng: random.Random,
               ids: list[str] | None) -> list[str]:
        name = self._object(object_name)
        if name is None:
            raise KeyError(object_name)
        collection = self.collections[name]
        if action == "create":
            factory = collection.factory
            indexes = [collection.create(factory, utcnow()) for _ in range(count)]
            self._outbound(name, indexes)
            return [collection.id_of(i) for i in indexes]
        indexes = collection.targets(action, count, rng, ids)
        done = []
        for index in indexes:
            now = utcnow()
            if action == "update":
                field_name = USER_UPDATE_FIELD[name]
                collection.update(index, lambda rec, t=now, f=field_name: {**rec, f: f"updated {t:%H%M%S%f}"}, now)
            elif action == "delete":
                collection.delete(index, now)
            elif action == "restore":
                collection.restore(index, now)
            done.append(collection.id_of(index))
        if action != "delete":
            self._outbound(name, indexes)
        return done

    def _outbound(self, name: str, indexes: list[int]) -> None:
        if self.state.webhook_url and indexes:
            collection = self.collections[name]
            salesforce_outbound(self.webhooks, self.state.webhook_url, ORG_ID, name,
                                [self.render(name, i, collection.get(i)) for i in indexes])

    def truth(self, object_name: str) -> list[dict]:
        name = self._object(object_name)
        if name is None:
            raise KeyError(object_name)
        return super().truth(name)

    def truth_time(self, entry: Entry, record: dict) -> str:
        return sf_datetime(entry.modified_at)
