"""The sandboxes' webhook senders retry like their providers: Ashby retries a failed delivery (5xx, a
network error) up to its 10 attempts and stops at once on the statuses it documents as final."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from canonry.sandbox.webhooks import ASHBY_ATTEMPTS, ASHBY_NO_RETRY, WebhookSender


class _Receiver(BaseHTTPRequestHandler):
    answers: list[int] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status = self.answers.pop(0) if self.answers else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _deliver(server, answers: list[int]) -> dict:
    _Receiver.answers = list(answers)
    sender = WebhookSender("ashby", ASHBY_ATTEMPTS, ASHBY_NO_RETRY)
    delivery = sender.send(f"http://127.0.0.1:{server.server_address[1]}/hooks/x",
                           lambda attempt: (b'{"action":"ping"}', {"Content-Type": "application/json"}), {})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (isinstance(delivery["status"], int) and
                                               (delivery["status"] < 300 or delivery["status"] in ASHBY_NO_RETRY)):
        time.sleep(0.05)
    return delivery


def test_ashby_retries_server_errors_until_accepted(receiver):
    delivery = _deliver(receiver, [500, 503])
    assert (delivery["status"], delivery["attempts"]) == (200, 3)


@pytest.mark.parametrize("final", ASHBY_NO_RETRY)
def test_ashby_stops_at_once_on_a_final_status(receiver, final):
    delivery = _deliver(receiver, [final])
    time.sleep(0.5)  # longer than the first back-off: a retry would have happened by now
    assert (delivery["status"], delivery["attempts"]) == (final, 1)
