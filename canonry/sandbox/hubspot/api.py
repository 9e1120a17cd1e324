"""HubSpot CRM v3 simulator (API notes: sources/hubspot/README.md).

Served: `/crm/v3/objects/{type}` (and the date-versioned `/crm/objects/2026-03/{type}`) list with
`limit` (capped at 100) / `after` / `properties` / `associations` / `archived`; `/search` with filter
groups, one sort, `limit` ≤ 200 and the 10,000-result cap; `/batch/read`; single-record GET; owners;
deal pipelines (no paging); property definitions (`/crm/v3/properties/{type}`) and custom-object
schemas (`/crm/v3/schemas`, none); the ten-second burst limit (429 + HubSpot's body, `policyName`) and the
5/s search limit; 401 bodies; the OAuth v1/v3/2026-03 token endpoints with 30-minute tokens.
Writes (single, batch create/update/upsert, write log, injectable failures): `writes.py`.
App webhooks to `state.webhook_url` on contact/company/deal changes: one v3-signed batch per mutation
(client secret), retried up to 10 times unless answered 400/401/403/404/405.
All property values are strings, as HubSpot sends them.
"""

from __future__ import annotations

import itertools
import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from canonry.sandbox.collection import Collection
from canonry.sandbox.datagen import Faker
from canonry.sandbox.engine import (
    PageCache,
    RateWindow,
    SandboxState,
    bearer_token,
    json_response,
)
from canonry.sandbox.hubspot.control import HubSpotControl
from canonry.sandbox.hubspot.data import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    OBJECT_TYPES,
    OWNER_OFFSET,
    HubSpotData,
)
from canonry.sandbox.hubspot.properties import CustomProperties
from canonry.sandbox.hubspot.reads import HubSpotReads
from canonry.sandbox.hubspot.search import HubSpotSearch
from canonry.sandbox.hubspot.writes import HubSpotWriteMixin, WriteFailure
from canonry.sandbox.kit import OAuthRoutes, SimulatorBase, int_ids, read_form
from canonry.sandbox.oauth_server import OAuthClient, OAuthError, OAuthServer
from canonry.sandbox.webhooks import HUBSPOT_ATTEMPTS, HUBSPOT_NO_RETRY, WebhookSender


class HubSpotSimulator(HubSpotData, HubSpotReads, HubSpotSearch, HubSpotWriteMixin, HubSpotControl, OAuthRoutes,
                       SimulatorBase):
    slug = "hubspot"

    def __init__(self, state: SandboxState, burst_limit: int = 100, search_per_second: int = 5,
                 client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
                 redirect_uris: tuple[str, ...] = (DEFAULT_REDIRECT_URI,), rotate_refresh_tokens: bool = False,
                 access_ttl: int = 1800, custom_properties: bool = False) -> None:
        self.state = state
        scale = state.scale
        self.owner_count = max(5, min(200, scale // 20))
        # Custom property definitions are always served; records carry values only with
        # `custom_properties=True` (canonry.sandbox.hubspot.properties.py).
        self.custom = CustomProperties(state.seed, OWNER_OFFSET + 1, self.owner_count)
        self.custom_values = custom_properties
        self.faker = {name: Faker(state.seed, f"hubspot.{name}") for name in (*OBJECT_TYPES, "owners")}
        self.collections: dict[str, Collection] = {
            name: Collection(name, scale, self._factory(name), *int_ids(offset))
            for name, (offset, _, _) in OBJECT_TYPES.items()
        }
        self.collections["owners"] = Collection("owners", self.owner_count, self._owner,
                                                *int_ids(OWNER_OFFSET))
        self.burst = RateWindow(burst_limit, 10.0)
        self.search_window = RateWindow(search_per_second, 1.0)
        # The registered OAuth app (client, secret, exact redirect URIs) is configurable per sandbox.
        self.oauth = OAuthServer(state, access_ttl=access_ttl, token_prefix="hs",
                                 rotate_refresh_tokens=rotate_refresh_tokens)
        self.oauth.register(OAuthClient(client_id, client_secret, tuple(redirect_uris)))
        self.writes: list[dict] = []
        self.write_failures: list[WriteFailure] = []
        self.page_cache = PageCache()
        # App webhooks (v3-signed with the app's client secret) to state.webhook_url on contact, company
        # and deal changes: canonry/sandbox/webhooks.py.
        self.client_secret = client_secret
        self.webhooks = WebhookSender("hubspot", HUBSPOT_ATTEMPTS, HUBSPOT_NO_RETRY)
        self.event_ids = itertools.count(1)

    # -- errors -------------------------------------------------------------------------------
    def error_response(self, status: int, message: str, kind: str) -> Response:
        correlation = str(uuid.uuid4())
        if kind == "rate_limited":
            return json_response({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                                  "errorType": "RATE_LIMIT", "correlationId": correlation,
                                  "policyName": "TEN_SECONDLY_ROLLING", "requestId": correlation}, status)
        if kind == "unauthorized":
            return json_response({"status": "error", "message": message, "correlationId": correlation,
                                  "category": "INVALID_AUTHENTICATION" if "expired" not in message
                                  else "EXPIRED_AUTHENTICATION"}, 401)
        category = {400: "VALIDATION_ERROR", 404: "OBJECT_NOT_FOUND", 403: "MISSING_SCOPES"}.get(status, "INTERNAL_ERROR")
        return json_response({"status": "error", "message": message, "correlationId": correlation,
                              "category": category}, status)

    def guard(self, request: Request, search: bool = False) -> tuple[Response | None, dict[str, str]]:
        """Authentication and rate limits; returns (error response or None, rate-limit headers)."""
        token_state = self.oauth.token_state(bearer_token(request))
        if token_state == "invalid":
            return self.error_response(401, "Authentication credentials not found. This API supports OAuth 2.0 "
                                       "authentication and you can find more details at "
                                       "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                                       "unauthorized"), {}
        if token_state == "expired":
            return self.error_response(401, "The OAuth token used to make this call expired.", "unauthorized"), {}
        if not self.state.rate_limits:
            return None, {}
        if search:
            allowed, _ = self.search_window.take()
            if not allowed:
                correlation = str(uuid.uuid4())
                return json_response({"status": "error", "message": "You have reached your secondly limit.",
                                      "errorType": "RATE_LIMIT", "correlationId": correlation,
                                      "policyName": "SECONDLY", "requestId": correlation}, 429), {}
            return None, {}
        allowed, remaining = self.burst.take()
        headers = {"X-HubSpot-RateLimit-Max": str(self.burst.limit),
                   "X-HubSpot-RateLimit-Remaining": str(remaining),
                   "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}
        if not allowed:
            return self.error_response(429, "", "rate_limited"), headers
        return None, headers

    # -- routes -------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        routes = []
        for prefix in ("/crm/v3/objects", "/crm/objects/2026-03"):
            routes += [
                Route(prefix + "/{object_type}", self.list_objects, methods=["GET"]),
                Route(prefix + "/{object_type}/search", self.search, methods=["POST"]),
                Route(prefix + "/{object_type}/batch/read", self.batch_read, methods=["POST"]),
                Route(prefix + "/{object_type}/{object_id}", self.get_object, methods=["GET"]),
            ]
        routes += [
            Route("/crm/v4/associations/{from_type}/{to_type}/batch/read", self.associations_batch_read,
                  methods=["POST"]),
            Route("/crm/v3/owners", self.list_owners, methods=["GET"]),
            Route("/crm/v3/owners/", self.list_owners, methods=["GET"]),
            Route("/crm/v3/pipelines/{object_type}", self.list_pipelines, methods=["GET"]),
            Route("/crm/v3/properties/{object_type}", self.list_properties, methods=["GET"]),
            Route("/crm/v3/properties/{object_type}/{property_name}", self.update_property, methods=["PATCH"]),
            Route("/crm/v3/schemas", self.list_schemas, methods=["GET"]),
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/v1/token", self.token, methods=["POST"]),
            Route("/oauth/v3/token", self.token, methods=["POST"]),
            Route("/oauth/2026-03/token", self.token, methods=["POST"]),
            Route("/oauth/2026-03/token/revoke", self.revoke, methods=["POST"]),
            Route("/oauth/v1/refresh-tokens/{token}", self.revoke, methods=["DELETE"]),
        ]
        return routes + self.write_routes()

    # -- OAuth --------------------------------------------------------------------------------
    def authorize_error(self, exc: OAuthError) -> Response:
        return json_response({"status": "BAD_REQUEST", "message": exc.description, "error": exc.error}, 400)

    async def token(self, request: Request) -> Response:
        form = await read_form(request)
        try:
            issued = self.grant(form)
        except OAuthError as exc:
            status = "BAD_REFRESH_TOKEN" if form.get("grant_type") == "refresh_token" else "BAD_AUTH_CODE"
            return json_response({"error": exc.error, "error_description": exc.description, "status": status,
                                  "message": exc.description}, exc.status)
        return json_response({"access_token": issued.access_token, "refresh_token": issued.refresh_token,
                              "expires_in": issued.expires_in, "token_type": "bearer", "hub_id": 62515,
                              "user_id": 9_000_000, "scopes": list(issued.scopes), "token_use": "access_token"})

    async def revoke(self, request: Request) -> Response:
        token = request.path_params.get("token") or (await read_form(request)).get("token", "")
        self.oauth.revoke(token)
        return Response(status_code=204)
