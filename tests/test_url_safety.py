"""Where a credential may go (canonry/netsafety.py): the URL table of tests/fixtures/url_safety.yml at
validate time, and the connect-time check on the socket (DNS rebinding between validate and sync)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from canonry.errors import CanonryError, ErrorClass
from canonry.http import ProviderSession
from canonry.http_budget import RetryPolicy
from canonry.netsafety import DestinationRefused, NotResolved, check_url, guard_session

TABLE = yaml.safe_load((Path(__file__).parent / "fixtures" / "url_safety.yml").read_text(encoding="utf-8"))


def table_resolver(host: str) -> list[str]:
    if host not in TABLE["resolver"]:
        raise NotResolved(host)
    return TABLE["resolver"][host]


@pytest.mark.parametrize("case", TABLE["cases"], ids=[f"{c['url']}|{c.get('allow_private', False)}"
                                                      for c in TABLE["cases"]])
def test_url_verdict(case):
    found = check_url(case["url"], allow_private=case.get("allow_private", False), resolver=table_resolver)
    verdict = found[0].code if found else "accepted"
    assert verdict == case["expect"], [(p.code, p.message) for p in found]
    for problem in found:
        assert problem.message and problem.hint


def test_the_table_covers_every_class():
    verdicts = {case["expect"] for case in TABLE["cases"]}
    assert {"url_forbidden_address", "url_private_network", "url_resolves_private", "url_host_obfuscated",
            "url_userinfo", "url_ambiguous", "accepted"} <= verdicts
    assert len(TABLE["cases"]) >= 60


class _Counting(http.server.BaseHTTPRequestHandler):
    requests_seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 — http.server's name
        type(self).requests_seen.append(self.headers.get("Authorization", ""))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def loopback_server() -> Iterator[http.server.ThreadingHTTPServer]:
    _Counting.requests_seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_loopback_sandbox_is_reached(loopback_server):
    session = ProviderSession("hubspot", "url-safety-ok", auth=lambda r: r.headers.update(Authorization="Bearer t"))
    assert session.get_json(f"http://127.0.0.1:{loopback_server.server_port}/ok") == {}
    assert _Counting.requests_seen == ["Bearer t"]


def test_rebinding_is_stopped_at_connect_time(loopback_server):
    """The name passed validation as a public host; when the request is made it resolves elsewhere. The
    socket's peer is what is checked, so nothing is sent. (The socket reaches 127.0.0.1 here, standing for
    a private address: the session refuses loopback for this test, as it refuses private addresses.)"""
    url = f"http://localhost:{loopback_server.server_port}/secret"
    assert check_url(url.replace("http://localhost", "https://rebound.example.com"),
                     resolver=lambda host: ["104.16.0.10"]) == []  # what validate saw
    session = requests.Session()
    guard_session(session, allow_loopback=False)
    with pytest.raises(DestinationRefused) as refused:
        session.get(url, headers={"Authorization": "Bearer must-not-arrive"}, timeout=5)
    assert refused.value.error_class == ErrorClass.CONFIG_ERROR
    assert "127.0.0.1" in str(refused.value) and "must-not-arrive" not in str(refused.value)
    assert _Counting.requests_seen == []


def test_provider_session_refuses_once_without_retrying(loopback_server, monkeypatch):
    """Through the session factory: a refused address is a config_error, not a transient failure to retry."""
    import canonry.http

    def refuse_loopback(session, *, allow_private=False):
        guard_session(session, allow_private=allow_private, allow_loopback=False)

    monkeypatch.setattr(canonry.http, "guard_session", refuse_loopback)
    session = ProviderSession("hubspot", "url-safety-refused", auth=lambda r: r.headers.update(Authorization="x"),
                              retry=RetryPolicy(max_attempts=5, base_delay=0.01))
    with pytest.raises(CanonryError) as refused:
        session.get_json(f"http://127.0.0.1:{loopback_server.server_port}/data")
    assert refused.value.error_class == ErrorClass.CONFIG_ERROR and not refused.value.retried
    assert "allow_private_network" in refused.value.hint
    assert session.telemetry.calls == 0 and _Counting.requests_seen == []
