"""Webhook registration endpoints of the sandboxes (`canonry webhooks register` talks to these): a
registration points the sandbox's webhook deliveries (`state.webhook_url`) at the registered URL.

* Pipedrive `POST /v1/webhooks` {subscription_url, event_action, event_object, version, http_auth_user,
  http_auth_password} -> 201 {success, data: {id, …}} (the password is not echoed).
* Lever `POST /v1/webhooks` {url, event} -> 201 {data: {id, url, event, signatureToken, createdAt}}.

Kept apart from the simulators: each simulator adds these routes with one line."""

from __future__ import annotations

import itertools

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from canonry.sandbox.engine import json_response

_IDS = itertools.count(1)


def pipedrive_webhook_routes(simulator) -> list[Route]:
    async def create(request: Request) -> Response:
        refused, _ = simulator.guard(request)
        if refused is not None:
            return refused
        body = await request.json()
        if not str(body.get("subscription_url", "")).startswith(("http://", "https://")):
            return simulator.error_response(400, "subscription_url is required", "bad_request")
        simulator.state.webhook_url = body["subscription_url"]
        if body.get("http_auth_user"):
            simulator.webhook_user, simulator.webhook_password = body["http_auth_user"], body.get("http_auth_password")
        data = {"id": next(_IDS), "subscription_url": body["subscription_url"], "version": body.get("version", "1.0"),
                "event_action": body.get("event_action"), "event_object": body.get("event_object"),
                "http_auth_user": body.get("http_auth_user"), "is_active": 1}
        return json_response({"status": "ok", "success": True, "data": data}, 201)

    return [Route("/v1/webhooks", create, methods=["POST"])]


def lever_webhook_routes(simulator) -> list[Route]:
    async def create(request: Request) -> Response:
        refused, _ = simulator.guard(request)
        if refused is not None:
            return refused
        body = await request.json()
        if not str(body.get("url", "")).startswith(("http://", "https://")) or not body.get("event"):
            return simulator.error_response(400, "url and event are required", "validation")
        simulator.state.webhook_url = body["url"]
        data = {"id": f"webhook-{next(_IDS)}", "url": body["url"], "event": body["event"],
                "signatureToken": simulator.signature_token, "createdAt": 0}
        return json_response({"data": data}, 201)

    return [Route("/v1/webhooks", create, methods=["POST"])]
