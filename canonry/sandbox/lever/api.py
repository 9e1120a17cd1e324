"""Lever Data API v1 simulator (API notes: sources/lever/README.md).

Served under `/v1`: `/opportunities` (filters `updated_at_start`/`_end`, `confidentiality`, `archived`,
`expand=applications`), `/opportunities/deleted` (`deleted_at_start`), `/opportunities/{id}`,
`/opportunities/{id}/interviews`, `/opportunities/{id}/offers`, `/postings` (`updated_at_start`, `state`),
`/users` (`includeDeactivated`), `/stages`, `/archive_reasons`. Every list answers
`{data, hasNext, next}` with an opaque `next` token passed back as `offset`, `limit` 1-100 (default 100).
All timestamps are epoch milliseconds. Auth: OAuth bearer tokens (Auth0-style authorize with `audience`,
1-hour access tokens, rotating single-use refresh tokens) or an API key over HTTP Basic. Rate limit: a
token bucket of 10 requests/s with bursts of 20, then 429 `{code, message}`. Mutations (through the
control endpoint) send signed webhooks in Lever's format to `state.webhook_url`.

Data model (all generated lazily from (seed, index); scale 1M costs no memory until records change):
* opportunity i belongs to contact `contact_of(i)`: every 7th opportunity (i % 7 == 4) is a second
  opportunity of the previous opportunity's contact. Contact fields (name, headline, emails, phones,
  links, location) are rendered from the contact, so every opportunity of a contact shows the same values;
  a contact change touches (re-stamps `updatedAt` of) every opportunity of that contact, as Lever does.
* interviews: opportunity i has [0, 1, 2, 1][i % 4] base interviews (closed-form index mapping);
  offers: opportunity i has one base offer when i % 5 == 3. Created interviews/offers attach to any
  opportunity. Any interview/offer change re-stamps its opportunity's `updatedAt` and `lastInteractionAt`
  (that is what lets a client find changed interviews/offers through `updated_at_start`).
* Default listing of opportunities hides confidential ones (`confidentiality=all` shows both), as Lever does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from canonry.sandbox.collection import Collection, Entry
from canonry.sandbox.datagen import Faker
from canonry.sandbox.engine import SandboxState, bearer_token, json_response
from canonry.sandbox.kit import (
    OAuthRoutes,
    SimulatorBase,
    basic_credentials,
    decode_cursor,
    encode_cursor,
    guarded,
    read_form,
    read_json,
)
from canonry.sandbox.lever.control import LeverControl
from canonry.sandbox.lever.custom_fields import LeverCustomQuestions
from canonry.sandbox.lever.data import (
    ACCESS_TTL,
    ARCHIVE_REASONS,
    AUDIENCE,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    DEFAULT_SIGNATURE_TOKEN,
    INTERVIEWS_PER,
    STAGES,
    LeverData,
    from_ms,
    ms,
    parse_uid,
    uid,
)
from canonry.sandbox.oauth_server import OAuthClient, OAuthError, OAuthServer
from canonry.sandbox.webhook_registration import lever_webhook_routes
from canonry.sandbox.webhooks import WebhookSender

PAGE_MAX = 100
class TokenBucket:
    """Lever's limiter: `rate` requests per second steady, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class LeverSimulator(LeverData, LeverControl, OAuthRoutes, SimulatorBase):
    slug = "lever"

    def __init__(self, state: SandboxState, rate_per_second: float = 10.0, burst: int = 20,
                 signature_token: str = DEFAULT_SIGNATURE_TOKEN,
                 redirect_uris: tuple[str, ...] = (DEFAULT_REDIRECT_URI,), custom_fields: bool = False) -> None:
        self.state = state
        scale = state.scale
        # `custom_fields=True`: applications carry Lever's custom questions (custom_fields.py).
        self.custom = LeverCustomQuestions(state.seed) if custom_fields else None
        seed = state.seed
        self.posting_count = max(5, min(500, scale // 10))
        self.user_count = max(5, min(200, scale // 20))
        self.fake = {name: Faker(seed, f"lever.{name}") for name in
                     ("opportunities", "contacts", "postings", "users", "interviews", "offers")}
        base_interviews = 4 * (scale // 4) + sum(INTERVIEWS_PER[r] for r in range(scale % 4))
        base_offers = sum(1 for i in range(scale % 5) if i == 3) + scale // 5
        self.collections: dict[str, Collection] = {
            "opportunities": self._collection("opportunities", scale, self._opportunity),
            "postings": self._collection("postings", self.posting_count, self._posting),
            "users": self._collection("users", self.user_count, self._user),
            "interviews": self._collection("interviews", base_interviews, self._interview),
            "offers": self._collection("offers", base_offers, self._offer),
            "stages": Collection("stages", len(STAGES), lambda i: {"text": STAGES[i][1]},
                                 lambda i: STAGES[i][0],
                                 lambda s: next((n for n, (sid, _) in enumerate(STAGES) if sid == s), None)),
            "archive_reasons": Collection("archive_reasons", len(ARCHIVE_REASONS),
                                          lambda i: {"text": ARCHIVE_REASONS[i][1], "status": ARCHIVE_REASONS[i][2]},
                                          lambda i: ARCHIVE_REASONS[i][0],
                                          lambda s: next((n for n, r in enumerate(ARCHIVE_REASONS) if r[0] == s),
                                                         None)),
        }
        # Small overlays (only what changed): contact field changes, children of created records.
        self.contact_changes: dict[int, dict] = {}
        self.contact_extra: dict[int, list[int]] = {}       # contact -> created opportunities
        self.extra_children: dict[str, dict[int, list[int]]] = {"interviews": {}, "offers": {}}
        self.bucket = TokenBucket(rate_per_second, burst)
        self.oauth = OAuthServer(state, access_ttl=ACCESS_TTL, rotate_refresh_tokens=True, token_prefix="lv")
        self.oauth.register(OAuthClient(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, tuple(redirect_uris)))
        self.signature_token = signature_token
        self.webhooks_sent: list[dict] = []
        self.webhook_sender = WebhookSender("lever", attempts=6)

    @staticmethod
    def _collection(kind: str, size: int, factory: Callable[[int], dict]) -> Collection:
        return Collection(kind, size, factory, lambda i, k=kind: uid(k, i), parse_uid(kind))

    # -- errors and guard -----------------------------------------------------------------------
    def error_response(self, status: int, message: str, kind: str) -> Response:
        code = {"rate_limited": "TooManyRequests", "unauthorized": "UnauthorizedError", "not_found": "ResourceNotFound",
                "validation": "BadRequestError", "forbidden": "ForbiddenError",
                "method_not_allowed": "MethodNotAllowedError"}.get(kind)
        if code is None:
            code = "ServiceUnavailable" if status == 503 else "InternalServerError"
        return json_response({"code": code, "message": message}, status)

    def guard(self, request: Request, **options) -> tuple[Response | None, dict[str, str]]:
        if request.headers.get("authorization", "").lower().startswith("basic "):
            try:
                key = (basic_credentials(request) or ("", ""))[0]
            except ValueError:
                key = ""
            if not self.state.is_valid_token(key):
                return self.error_response(401, "Invalid API key", "unauthorized"), {}
        else:
            token_state = self.oauth.token_state(bearer_token(request))
            if token_state == "invalid":
                return self.error_response(401, "Invalid or missing access token", "unauthorized"), {}
            if token_state == "expired":
                return self.error_response(401, "Access token expired", "unauthorized"), {}
        if self.state.rate_limits and not self.bucket.take():
            return self.error_response(429, "Too many requests: the limit is 10 requests per second per API key "
                                       "(bursts up to 20)", "rate_limited"), {}
        return None, {}

    # -- routes -------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/lever/custom_fields", self.control_custom_fields, methods=["POST"]),
            Route("/v1/opportunities", self.list_opportunities, methods=["GET"]),
            Route("/v1/opportunities/deleted", self.list_deleted, methods=["GET"]),
            Route("/v1/opportunities/{id}", self.get_opportunity, methods=["GET"]),
            Route("/v1/opportunities/{id}/interviews", self.list_children, methods=["GET"]),
            Route("/v1/opportunities/{id}/offers", self.list_children, methods=["GET"]),
            Route("/v1/postings", self.list_postings, methods=["GET"]),
            Route("/v1/users", self.list_users, methods=["GET"]),
            Route("/v1/stages", self.list_static, methods=["GET"]),
            Route("/v1/archive_reasons", self.list_static, methods=["GET"]),
            *lever_webhook_routes(self),  # POST /v1/webhooks: canonry/sandbox/webhook_registration.py
            # Auth0 serves the consent page at /authorize (https://auth.lever.co/authorize), which is what
            # sources/lever/settings.py derives with a base_url; /oauth/authorize is kept as an alias.
            Route("/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/oauth/revoke", self.revoke, methods=["POST"]),
        ]

    def _limit(self, request: Request) -> int:
        raw = request.query_params.get("limit", str(PAGE_MAX))
        limit = int(raw)  # ValueError -> caller answers 400
        if not 1 <= limit <= PAGE_MAX:
            raise ValueError(f"limit must be between 1 and {PAGE_MAX}")
        return limit

    def _page(self, request: Request, rows: Callable[[dict], Iterator[tuple[dict, dict]]],
              render: Callable[[dict], dict] | None = None) -> Response:
        """Shared paging: `rows(position)` yields (record body, next position) from a decoded offset."""
        try:
            limit = self._limit(request)
            offset = request.query_params.get("offset")
            position = decode_cursor(offset) if offset else {}
        except ValueError as exc:
            return self.error_response(400, f"Invalid request: {exc}", "validation")
        data: list[dict] = []
        next_position = None
        for body, after in rows(position):
            if len(data) == limit:
                next_position = after
                break
            data.append(body)
        payload: dict = {"data": data, "hasNext": next_position is not None}
        if next_position is not None:
            payload["next"] = encode_cursor(next_position)
        return json_response(payload)

    @staticmethod
    def _ms_param(request: Request, name: str) -> datetime | None:
        value = request.query_params.get(name)
        return from_ms(value) if value not in (None, "") else None

    @guarded
    async def list_opportunities(self, request: Request, headers: dict[str, str]) -> Response:
        q = request.query_params
        try:
            since, until = self._ms_param(request, "updated_at_start"), self._ms_param(request, "updated_at_end")
        except ValueError:
            return self.error_response(400, "updated_at_start/updated_at_end must be epoch milliseconds", "validation")
        confidentiality = q.get("confidentiality", "non-confidential")
        archived = q.get("archived")
        expand = "applications" in q.getlist("expand")
        collection = self.collections["opportunities"]

        def keep(entry: Entry) -> bool:
            record = entry.record
            if confidentiality != "all" and record["confidentiality"] != confidentiality:
                return False
            if archived is not None and (record["archived"] is not None) != (archived == "true"):
                return False
            return until is None or entry.modified_at <= until

        def rows(position: dict) -> Iterator[tuple[dict, dict]]:
            if since is None:
                # Plain listing in creation order: the offset token is the next index (O(1) resume).
                for index, entry in collection.iter_alive(position.get("i", 0)):
                    if keep(entry):
                        yield self.render_opportunity(index, entry, expand), {"i": index}
                return
            skip = position.get("n", 0)
            for n, (index, entry) in enumerate(collection.iter_modified_since(since)):
                if n >= skip and keep(entry):
                    yield self.render_opportunity(index, entry, expand), {"n": n}
        return self._page(request, rows)

    @guarded
    async def list_deleted(self, request: Request, headers: dict[str, str]) -> Response:
        try:
            since = self._ms_param(request, "deleted_at_start") or datetime(1970, 1, 1, tzinfo=UTC)
        except ValueError:
            return self.error_response(400, "deleted_at_start must be epoch milliseconds", "validation")
        collection = self.collections["opportunities"]

        def rows(position: dict) -> Iterator[tuple[dict, dict]]:
            skip = position.get("n", 0)
            deleted = sorted(((e.deleted_at, i) for i, e in collection.iter_deleted() if e.deleted_at >= since))
            for n, (at, index) in enumerate(deleted):
                if n >= skip:
                    yield {"id": collection.id_of(index), "deletedAt": ms(at),
                           "deletedBy": uid("users", 0)}, {"n": n}
        return self._page(request, rows)

    async def control_custom_fields(self, request: Request) -> Response:
        """Edit a custom question's text (`{id, text}`): its id stays."""
        body = await read_json(request) or {}
        field = self.custom.retext(str(body.get("id")), str(body.get("text"))) if self.custom else None
        if field is None:
            return self.error_response(404, "unknown custom question (or the simulator runs without custom_fields)",
                                       "not_found")
        return json_response(field)

    @guarded
    async def get_opportunity(self, request: Request, headers: dict[str, str]) -> Response:
        collection = self.collections["opportunities"]
        index = collection.index_of(request.path_params["id"])
        if index is None or not collection.is_alive(index):
            return self.error_response(404, "Opportunity not found", "not_found")
        return json_response({"data": self.render_opportunity(index, collection.get(index),
                                                              "applications" in request.query_params.getlist("expand"))})

    @guarded
    async def list_children(self, request: Request, headers: dict[str, str]) -> Response:
        kind = "interviews" if request.url.path.endswith("/interviews") else "offers"
        opportunities = self.collections["opportunities"]
        opp = opportunities.index_of(request.path_params["id"])
        if opp is None or not opportunities.is_alive(opp):
            return self.error_response(404, "Opportunity not found", "not_found")
        collection = self.collections[kind]

        def rows(position: dict) -> Iterator[tuple[dict, dict]]:
            skip = position.get("n", 0)
            alive = [j for j in self.children_of(kind, opp) if collection.is_alive(j)]
            for n, j in enumerate(alive):
                if n >= skip:
                    yield self.render(kind, j, collection.get(j)), {"n": n}
        return self._page(request, rows)

    @guarded
    async def list_postings(self, request: Request, headers: dict[str, str]) -> Response:
        try:
            since = self._ms_param(request, "updated_at_start")
        except ValueError:
            return self.error_response(400, "updated_at_start must be epoch milliseconds", "validation")
        states = request.query_params.getlist("state")
        collection = self.collections["postings"]

        def rows(position: dict) -> Iterator[tuple[dict, dict]]:
            source = collection.iter_modified_since(since) if since else collection.iter_alive()
            skip = position.get("n", 0)
            for n, (index, entry) in enumerate(source):
                if n >= skip and (not states or entry.record["state"] in states):
                    yield self.render("postings", index, entry), {"n": n}
        return self._page(request, rows)

    @guarded
    async def list_users(self, request: Request, headers: dict[str, str]) -> Response:
        include_deactivated = request.query_params.get("includeDeactivated", "false").lower() == "true"
        collection = self.collections["users"]

        def rows(position: dict) -> Iterator[tuple[dict, dict]]:
            for index, entry in collection.iter_alive(position.get("i", 0)):
                if include_deactivated or entry.record["deactivatedAt"] is None:
                    yield self.render("users", index, entry), {"i": index}
        return self._page(request, rows)

    @guarded
    async def list_static(self, request: Request, headers: dict[str, str]) -> Response:
        kind = "stages" if request.url.path.endswith("/stages") else "archive_reasons"
        collection = self.collections[kind]

        def rows(position: dict) -> Iterator[tuple[dict, dict]]:
            for index, entry in collection.iter_alive(position.get("i", 0)):
                yield self.render(kind, index, entry), {"i": index}
        return self._page(request, rows)

    # -- OAuth (Auth0-style) --------------------------------------------------------------------
    unsupported_grant = "Unsupported grant type: {grant}"

    def authorize_refusal(self, q) -> Response | None:
        if q.get("audience") != AUDIENCE:
            return json_response({"error": "access_denied",
                                  "error_description": f"Service not found: {q.get('audience')}"}, 400)
        if q.get("response_type", "code") != "code":
            return json_response({"error": "unsupported_response_type",
                                  "error_description": "response_type must be code"}, 400)
        return None

    def authorize_error(self, exc: OAuthError) -> Response:
        return json_response({"error": exc.error, "error_description": exc.description}, 400)

    async def token(self, request: Request) -> Response:
        form = await read_form(request, json_bodies=True)
        try:
            if form.get("audience") not in (None, AUDIENCE):
                raise OAuthError("access_denied", f"Service not found: {form.get('audience')}", 403)
            if form.get("grant_type") == "authorization_code" and form.get("audience") is None:
                raise OAuthError("access_denied", "the audience parameter is required", 403)
            issued = self.grant(form)
        except OAuthError as exc:
            # Auth0 answers a dead (used, revoked or unknown) refresh token with 403 invalid_grant.
            status = 403 if exc.error == "invalid_grant" else exc.status
            return json_response({"error": exc.error, "error_description": exc.description}, status)
        return json_response({"access_token": issued.access_token, "refresh_token": issued.refresh_token,
                              "expires_in": issued.expires_in, "token_type": "Bearer",
                              "scope": " ".join(issued.scopes)})

    async def revoke(self, request: Request) -> Response:
        form = await read_form(request, json_bodies=True)
        self.oauth.revoke(form.get("token", ""))
        return Response(status_code=200)
