"""Local receivers for alert deliveries: an HTTP webhook receiver and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.observability.servers import serve


class WebhookReceiver:
    """Records every JSON body POSTed; answers 500 to the first `fail_first` requests (to test retries)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict] = []
        self.requests = 0
        self.fail_first = fail_first

    async def hook(self, request: Request) -> JSONResponse:
        self.requests += 1
        if self.requests <= self.fail_first:
            return JSONResponse({"error": "try later"}, status_code=500)
        self.bodies.append(await request.json())
        return JSONResponse({"ok": True})

    @contextmanager
    def running(self, path: str) -> Iterator[str]:
        with serve(Starlette(routes=[Route(path, self.hook, methods=["POST"])])) as base_url:
            yield base_url + path


class _Handler:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[tuple[int, list[Message]]]:
    """A local SMTP server on 127.0.0.1: yields (port, received messages)."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = _Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler.messages
    finally:
        controller.stop()
