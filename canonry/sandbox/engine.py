"""The sandbox engine: serves provider simulators over real HTTP on 127.0.0.1.

The engine knows no provider. A simulator (one module per provider) contributes its routes, its
collections and its error format; the engine adds what every provider sandbox shares:

* a request log (what a test asserts API efficiency from),
* fault injection set per run (5xx rate, latency, truncated or invalid JSON, connection resets,
  429 storms, a revoked token mid-run, a page that never answers),
* the control endpoints under ``/_sandbox/`` to mutate records between syncs and read the truth,
* a server that runs in a background thread (tests, demo) or in the foreground (CLI).
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from canonry.sandbox.collection import Collection

CONTROL_PREFIX = "/_sandbox"
# Query parameters that carry credentials (Pipedrive's api_token): never kept in the request log.
SECRET_QUERY_PARAMS = frozenset({"api_token", "access_token", "client_secret", "refresh_token", "code"})
# Routing misses, answered through the simulator's `error_response` with these kinds and messages.
UNKNOWN_ROUTE_KINDS = {404: "not_found", 405: "method_not_allowed"}
UNKNOWN_ROUTE_MESSAGES = {"not_found": "Resource not found: {method} {path}",
                          "method_not_allowed": "Method {method} is not allowed on {path}"}


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class FaultPlan:
    """What goes wrong, per run. Rates are fractions of API requests (control paths are exempt)."""

    error_rate: float = 0.0          # answered 500/502/503 with the provider's error body
    truncate_rate: float = 0.0       # JSON body cut in half
    invalid_json_rate: float = 0.0   # body that is not JSON at all
    reset_rate: float = 0.0          # connection dropped mid-body
    latency_ms: int = 0              # added to every API request
    storm_429: int = 0               # the next N API requests answer 429
    storm_after: int | None = None   # ... after N more API requests answered normally
    revoke_after: int | None = None  # after N more API requests every token is revoked
    hang_after: int | None = None    # request number N+1 never answers (until the client gives up)
    seed: int = 0

    def active(self) -> bool:
        return any((self.error_rate, self.truncate_rate, self.invalid_json_rate, self.reset_rate,
                    self.latency_ms, self.storm_429, self.revoke_after is not None, self.hang_after is not None))


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int
    at: float
    fault: str | None = None
    body: str | None = None


class RateWindow:
    """A rolling window limiter: at most `limit` requests per `interval` seconds."""

    def __init__(self, limit: int, interval: float) -> None:
        self.limit, self.interval = limit, interval
        self.stamps: deque[float] = deque()
        self.lock = threading.Lock()

    def take(self) -> tuple[bool, int]:
        """Try to spend one request; returns (allowed, remaining)."""
        now = time.monotonic()
        with self.lock:
            while self.stamps and now - self.stamps[0] >= self.interval:
                self.stamps.popleft()
            if len(self.stamps) >= self.limit:
                return False, 0
            self.stamps.append(now)
            return True, self.limit - len(self.stamps)


class Simulator(Protocol):
    """What a provider module plugs into the engine."""

    slug: str
    collections: dict[str, Collection]

    def routes(self) -> list[Route]: ...

    def error_response(self, status: int, message: str, kind: str) -> Response:
        """The provider's own error body for `kind` in {server, rate_limited, unauthorized, not_found,
        method_not_allowed}."""
        ...

    def mutate(self, object_name: str, action: str, count: int, rng: random.Random,
               ids: list[str] | None) -> list[str]: ...

    def truth(self, object_name: str) -> list[dict]: ...


@dataclass
class SandboxState:
    """Everything a simulator shares with the engine."""

    slug: str
    seed: int = 7
    scale: int = 200
    tokens: set[str] = field(default_factory=set)
    rate_limits: bool = True
    faults: FaultPlan = field(default_factory=FaultPlan)
    log: list[LoggedRequest] = field(default_factory=list)
    log_bodies: bool = False
    api_requests: int = 0
    base_url: str = ""
    webhook_url: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    # Keep rendered list pages (bytes) until their collection changes: a benchmark instrument
    # (`sandbox serve --page-cache`), so serving is not the bottleneck of what is measured. Off by default.
    page_cache: bool = False

    def is_valid_token(self, token: str | None) -> bool:
        return bool(token) and token in self.tokens


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # orjson: the same compact JSON as json.dumps(separators=(",", ":")) (non-ASCII as UTF-8, not \\u
    # escapes), several times faster; list pages are where a sandbox spends its time.
    return bytes_response(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS), status, headers)


def bytes_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


class PageCache:
    """Rendered pages by request key, each valid while its collection's `version` is unchanged."""

    def __init__(self) -> None:
        self.pages: dict[tuple, tuple[int, bytes]] = {}
        self.lock = threading.Lock()

    def get(self, key: tuple, version: int) -> bytes | None:
        hit = self.pages.get(key)
        return hit[1] if hit is not None and hit[0] == version else None

    def put(self, key: tuple, version: int, body: bytes) -> None:
        with self.lock:
            self.pages[key] = (version, body)


class _Hang(Exception):
    pass


def build_app(simulator: Simulator, state: SandboxState) -> Starlette:
    """The ASGI app: control routes, the simulator's routes, and the fault/log middleware."""

    async def control_mutate(request: Request) -> Response:
        body = await request.json()
        rng = random.Random(body.get("seed", state.seed))
        result: dict[str, list[str]] = {}
        for action in ("create", "update", "delete", "restore"):
            spec = body.get(action)
            if spec is None:
                continue
            ids = spec if isinstance(spec, list) else None
            count = spec if isinstance(spec, int) else len(ids or [])
            try:
                result[action] = simulator.mutate(body["object"], action, count, rng, ids)
            except KeyError as exc:
                return JSONResponse({"error": f"unknown object or id: {exc}"}, status_code=404)
        return JSONResponse(result)

    async def control_truth(request: Request) -> Response:
        name = request.path_params["object"]
        if name not in simulator.collections:
            return JSONResponse({"error": f"unknown object {name!r}",
                                 "objects": sorted(simulator.collections)}, status_code=404)
        return json_response({"object": name, "records": simulator.truth(name)})

    async def control_requests(request: Request) -> Response:
        if request.method == "DELETE":
            with state.lock:
                state.log.clear()
            return JSONResponse({"cleared": True})
        with state.lock:
            rows = [asdict(r) for r in state.log]
        return JSONResponse({"requests": rows})

    async def control_faults(request: Request) -> Response:
        body = await request.json()
        state.faults = FaultPlan(**body)
        state.rng = random.Random(state.faults.seed)
        return JSONResponse(asdict(state.faults))

    async def control_tokens(request: Request) -> Response:
        body = await request.json()
        for token in body.get("add", []):
            state.tokens.add(token)
        for token in body.get("revoke", []):
            state.tokens.discard(token)
        if body.get("revoke_all"):
            state.tokens.clear()
        return JSONResponse({"tokens": len(state.tokens)})

    async def control_info(request: Request) -> Response:
        return JSONResponse({"provider": simulator.slug, "seed": state.seed, "scale": state.scale,
                             "objects": {n: c.count_alive() for n, c in simulator.collections.items()}})

    control = [
        Route(f"{CONTROL_PREFIX}/mutate", control_mutate, methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/truth/{{object}}", control_truth, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/requests", control_requests, methods=["GET", "DELETE"]),
        Route(f"{CONTROL_PREFIX}/faults", control_faults, methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/tokens", control_tokens, methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/info", control_info, methods=["GET"]),
    ]
    async def unknown_route(request: Request, exc: HTTPException) -> Response:
        # A path (or method) the simulator does not serve answers in the provider's own error format,
        # as the real API does, never Starlette's plain-text "Not Found".
        if request.url.path.startswith(CONTROL_PREFIX):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        kind = UNKNOWN_ROUTE_KINDS.get(exc.status_code)
        if kind is None:
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return simulator.error_response(exc.status_code, UNKNOWN_ROUTE_MESSAGES[kind].format(
            method=request.method, path=request.url.path), kind)

    app = Starlette(routes=control + simulator.routes(),
                    exception_handlers={status: unknown_route for status in UNKNOWN_ROUTE_KINDS})
    return _FaultAndLogMiddleware(app, simulator, state)


class _FaultAndLogMiddleware:
    """Logs every request and applies the run's fault plan to API (non-control, non-OAuth) paths."""

    def __init__(self, app: Starlette, simulator: Simulator, state: SandboxState) -> None:
        self.app, self.simulator, self.state = app, simulator, state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        query = "&".join(
            part if part.split("=", 1)[0] not in SECRET_QUERY_PARAMS else part.split("=", 1)[0] + "=***"
            for part in scope.get("query_string", b"").decode().split("&") if part
        )
        is_api = not path.startswith(CONTROL_PREFIX) and "oauth" not in path and "/token" not in path
        entry = LoggedRequest(scope["method"], path, query, 0, time.time())
        state = self.state

        body_chunks: list[bytes] = []
        if state.log_bodies and is_api:
            receive = _recording_receive(receive, body_chunks)

        fault = self._draw_fault() if is_api else None
        if is_api:
            with state.lock:
                state.api_requests += 1
        entry.fault = fault
        if fault == "hang":
            with state.lock:
                state.log.append(entry)
            await asyncio.sleep(3600)
            return
        if state.faults.latency_ms and is_api:
            await asyncio.sleep(state.faults.latency_ms / 1000)
        if fault in ("error", "storm"):
            kind = "server" if fault == "error" else "rate_limited"
            status = 503 if fault == "error" else 429
            response = self.simulator.error_response(status, "injected fault", kind)
            entry.status = response.status_code
            with state.lock:
                state.log.append(entry)
            await response(scope, receive, send)
            return

        captured: dict[str, Any] = {"status": 0, "headers": [], "body": b""}

        async def capture_send(message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")

        await self.app(scope, receive, capture_send)
        entry.status = captured["status"]
        if body_chunks:
            entry.body = b"".join(body_chunks).decode(errors="replace")
        with state.lock:
            state.log.append(entry)
        body: bytes = captured["body"]
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != b"content-length"]
        if fault == "truncate" and captured["status"] == 200:
            body = body[: max(1, len(body) // 2)]
        elif fault == "invalid_json" and captured["status"] == 200:
            body = b"<html><body>502 Bad Gateway (upstream sent garbage)</body></html>"
        if fault == "reset" and captured["status"] == 200:
            # Promise the whole body, send half, then drop the connection.
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            raise ConnectionResetError("injected connection reset")
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": captured["status"], "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _draw_fault(self) -> str | None:
        state, plan = self.state, self.state.faults
        if not plan.active():
            return None
        with state.lock:
            if plan.revoke_after is not None:
                if plan.revoke_after <= 0:
                    state.tokens.clear()
                    plan.revoke_after = None
                else:
                    plan.revoke_after -= 1
            if plan.hang_after is not None:
                if plan.hang_after <= 0:
                    plan.hang_after = None
                    return "hang"
                plan.hang_after -= 1
            if plan.storm_after is not None:
                plan.storm_after -= 1
                if plan.storm_after < 0:
                    plan.storm_after = None
            if plan.storm_429 > 0 and plan.storm_after is None:
                plan.storm_429 -= 1
                return "storm"
            roll = state.rng.random()
            for name, rate in (("error", plan.error_rate), ("truncate", plan.truncate_rate),
                               ("invalid_json", plan.invalid_json_rate), ("reset", plan.reset_rate)):
                if roll < rate:
                    return name
                roll -= rate
        return None


def _recording_receive(receive: Callable, chunks: list[bytes]) -> Callable:
    async def wrapped():
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
        return message
    return wrapped


class SandboxServer:
    """Runs one simulator on 127.0.0.1 in a background thread; a context manager."""

    def __init__(self, simulator: Simulator, state: SandboxState, port: int = 0,
                 tls: bool = False, cert_dir: Path | None = None) -> None:
        import uvicorn

        self.simulator, self.state = simulator, state
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        # Listen now: a client told the URL before uvicorn is up queues instead of being refused.
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.cert_path: Path | None = None
        ssl_kwargs: dict[str, str] = {}
        if tls:
            self.cert_path, key_path = self_signed_certificate(cert_dir or Path.cwd() / "data" / "sandbox")
            ssl_kwargs = {"ssl_certfile": str(self.cert_path), "ssl_keyfile": str(key_path)}
        scheme = "https" if tls else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"
        state.base_url = self.base_url
        config = uvicorn.Config(build_app(simulator, state), log_level="error", lifespan="off",
                                access_log=False, timeout_keep_alive=30, timeout_graceful_shutdown=1,
                                **ssl_kwargs)
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    def start(self) -> SandboxServer:
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name=f"sandbox-{self.simulator.slug}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"sandbox {self.simulator.slug} did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        self.server.run(sockets=[self.sock])

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread:
            self.thread.join(timeout=5)
        self.sock.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost, generated once into `directory`."""
    import ipaddress
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "sandbox-cert.pem", directory / "sandbox-key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "canonry-sandbox")])
    now = utcnow()
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
