"""`canonry webhooks serve`: one ASGI app, a route per connection (`POST /hooks/<connection id>`).

Per delivery: size cap (Content-Length, then counted while streaming: a 10 MB body is cut off, never
buffered), the provider's authentication over the raw bytes, then the journal commit, then the 2xx. The
answers follow the providers' retry rules: 401/403/404/400/413 stop HubSpot's retries (and say nothing
about why: the reason is logged here, by code, without the body or any secret); a journal failure is a
503, which every provider retries.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from canonry.config import ConnectionsFile
from canonry.secrets import register_secret, resolve_secret
from canonry.webhooks.contract import Delivery, Refused, Settings
from canonry.webhooks.journal import Journal
from canonry.webhooks.verify import acknowledgement, verify

log = logging.getLogger("canonry.webhooks")
CONNECTION_ID = re.compile(r"[a-z0-9][a-z0-9_\-]*")
DEFAULT_MAX_BODY = 2 * 1024 * 1024


class _TooLarge(Exception):
    pass


@dataclass
class IntakeStats:
    """Counters since start (per reason code for refusals): the serve command prints them on exit."""

    accepted: int = 0
    duplicates: int = 0
    refused: dict[str, int] = field(default_factory=dict)


def connection_settings(model: ConnectionsFile) -> dict[str, Settings]:
    """Settings of every connection with webhooks enabled, secrets resolved once (and registered with the
    redaction filter: no log line or error can carry them)."""
    out = {}
    for connection in model.connections:
        hooks = connection.webhooks
        if hooks is None or not hooks.enabled:
            continue
        secret = resolve_secret(hooks.secret) if hooks.secret else None
        register_secret(secret)
        out[connection.id] = Settings(connection.id, connection.provider, secret, hooks.username,
                                      hooks.organization_id)
    return out


async def _read_capped(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(settings: dict[str, Settings], journal: Journal, max_body: int = DEFAULT_MAX_BODY,
              stats: IntakeStats | None = None) -> Starlette:
    stats = stats or IntakeStats()

    def refuse(connection_id: str, status: int, reason: str) -> Response:
        stats.refused[reason] = stats.refused.get(reason, 0) + 1
        log.warning("webhook refused: connection=%s status=%s reason=%s", connection_id, status, reason)
        return JSONResponse({"error": {400: "bad request", 401: "unauthorized", 403: "forbidden",
                                       404: "not found", 413: "payload too large"}.get(status, "refused")},
                            status_code=status)

    async def hook(request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        conn = settings.get(connection_id)
        if conn is None:  # (the id is logged only when it looks like one: no log injection)
            shown = connection_id if CONNECTION_ID.fullmatch(connection_id) else "<not an id>"
            return refuse(shown[:64], 404, "unknown_connection")
        try:
            body = await _read_capped(request, max_body)
        except _TooLarge:
            return refuse(connection_id, 413, "body_too_large")
        delivery = Delivery(request.method, str(request.url), request.headers, body, int(time.time() * 1000))
        try:
            events = verify(delivery, conn)
        except Refused as refusal:
            return refuse(connection_id, refusal.status, refusal.reason)
        try:
            added = await run_in_threadpool(journal.append, connection_id, conn.provider,
                                            [(e.event_id, e.occurred_ms, e.body) for e in events])
        except Exception as exc:  # noqa: BLE001 - the provider must retry: never ack what is not journaled
            log.error("webhook journal write failed: connection=%s error=%s", connection_id, type(exc).__name__)
            return JSONResponse({"error": "try again"}, status_code=503)
        stats.accepted += added
        stats.duplicates += len(events) - added
        log.info("webhook accepted: connection=%s events=%d new=%d", connection_id, len(events), added)
        body_out, media = acknowledgement(conn.provider)
        return Response(body_out, media_type=media)

    return Starlette(routes=[Route("/hooks/{connection_id}", hook, methods=["POST"])])


def serve(settings: dict[str, Settings], host: str = "127.0.0.1", port: int = 0,
          max_body: int = DEFAULT_MAX_BODY, on_listen=None) -> IntakeStats:
    """Run until interrupted. `on_listen(url)` is called once the socket listens (port 0: a free one)."""
    import uvicorn

    journal = Journal()
    stats = IntakeStats()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    if on_listen:
        on_listen(f"http://{host}:{sock.getsockname()[1]}")
    config = uvicorn.Config(build_app(settings, journal, max_body, stats), log_level="warning", lifespan="off",
                            access_log=False, timeout_graceful_shutdown=2)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        journal.close()
        sock.close()
    return stats
