"""Workable webhook subscriptions (workable.readme.io/reference/webhooks): `POST /spi/v3/subscriptions`
`{target, event, args}` registers a target for `candidate_created` or `candidate_moved` (filters by job
shortcode / stage slug in `args`), `DELETE /spi/v3/subscriptions/{id}` removes it. When the event happens the
sandbox POSTs the candidate (as the candidate details endpoint renders it) to each matching target, signed
`X-Workable-Signature: <hex HMAC-SHA256(key, raw body)>` where the key is the account token that created the
subscription. Workable's retry count is not published: the sandbox retries WORKABLE_ATTEMPTS times."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid

from starlette.requests import Request
from starlette.responses import Response

from canonry.sandbox.engine import bearer_token, json_response, utcnow
from canonry.sandbox.kit import guarded
from canonry.sandbox.webhooks import WebhookSender

EVENTS = ("candidate_created", "candidate_moved")
WORKABLE_ATTEMPTS = 5


class WorkableSubscriptions:
    """Mixed into the simulator: the subscription routes and the deliveries of candidate events."""

    def init_subscriptions(self) -> None:
        self.subscriptions: dict[str, dict] = {}
        self.subscriptions_lock = threading.Lock()
        self.webhook_sender = WebhookSender("workable", WORKABLE_ATTEMPTS)

    @guarded
    async def create_subscription(self, request: Request, headers: dict[str, str]) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return json_response({"error": "Malformed JSON"}, 400, headers=headers)
        target, event = body.get("target"), body.get("event")
        if not isinstance(target, str) or not target.startswith(("http://", "https://")) or event not in EVENTS:
            return json_response({"error": f"target must be a URL and event one of {', '.join(EVENTS)}"}, 422,
                                 headers=headers)
        with self.subscriptions_lock:
            if any(s["target"] == target and s["event"] == event for s in self.subscriptions.values()):
                return json_response({"error": "Subscription already exists"}, 409, headers=headers)
            subscription_id = str(len(self.subscriptions) + 1)
            self.subscriptions[subscription_id] = {"id": subscription_id, "target": target, "event": event,
                                                   "args": body.get("args") or {},
                                                   "key": bearer_token(request)}
        return json_response({"id": subscription_id}, 201, headers=headers)

    @guarded
    async def delete_subscription(self, request: Request, headers: dict[str, str]) -> Response:
        with self.subscriptions_lock:
            removed = self.subscriptions.pop(request.path_params["id"], None)
        if removed is None:
            return json_response({"error": "Not found"}, 404, headers=headers)
        return Response(status_code=204, headers=headers)

    def notify_candidate(self, event: str, index: int) -> None:
        """Deliver `event` for candidate `index` to every subscription it matches (in the background)."""
        with self.subscriptions_lock:
            matching = [s for s in self.subscriptions.values() if s["event"] == event]
        if not matching:
            return
        candidate = self.candidate_details(index)
        for subscription in matching:
            args = subscription["args"]
            if args.get("job_shortcode") and args["job_shortcode"] != candidate["job"]["shortcode"]:
                continue
            if args.get("stage_slug") and args["stage_slug"] != candidate["stage"]:
                continue
            raw = json.dumps({"id": str(uuid.uuid4()), "event_type": event, "resource_type": "candidate",
                              "fired_at": utcnow().isoformat().replace("+00:00", "Z"), "data": candidate},
                             separators=(",", ":")).encode()
            signature = hmac.new(subscription["key"].encode(), raw, hashlib.sha256).hexdigest()
            self.webhook_sender.send(subscription["target"], lambda attempt, raw=raw, signature=signature: (
                raw, {"Content-Type": "application/json", "X-Workable-Signature": signature}),
                {"event": event, "candidate": candidate["id"]})
