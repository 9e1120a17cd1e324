"""Local HTTP fakes for the guard tests: an OpenAI-compatible chat endpoint and a Salesforce describe API."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class FakeServer:
    """A tiny http.server on 127.0.0.1 (random port) answering with ``route(method, path, query, body,
    headers) -> (status, json_body)``; every request is recorded."""

    def __init__(self, route: Callable[..., tuple[int, Any]]) -> None:
        self.route = route
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append({"method": method, "path": url.path, "query": query, "body": body,
                                        "headers": headers})
                status, payload = server.route(method, url.path, query, body, headers)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def chat_server(answers: list[str], status: int = 200) -> FakeServer:
    """Answers POST /v1/chat/completions with the scripted answers in order (the last one repeats)."""

    def route(method, path, query, body, headers):
        if method != "POST" or path != "/v1/chat/completions":
            return 404, {"error": {"message": "not found"}}
        if status != 200:
            return status, {"error": {"message": "upstream exploded"}}
        count = sum(1 for r in server.requests if r["path"] == path)
        answer = answers[min(count, len(answers)) - 1]
        return 200, {"id": f"chatcmpl-{count}", "object": "chat.completion", "model": body["model"],
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": answer}}]}

    server = FakeServer(route)
    return server
