"""What a source gets to talk to its provider: one connection's settings, credential and session.

Sources import only the kit (this module, `http`, `raw`, `errors`); the pipeline builds a
`ConnectionRuntime` from the connections file and the secret store and hands it to the source.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import requests

from canonry.auth_halt import CredentialHalt
from canonry.errors import CanonryError, ErrorClass
from canonry.http import ProviderSession
from canonry.http_budget import RetryPolicy
from canonry.http_telemetry import Telemetry

# The resource-state key of a checkpoint: where a resumable resource continues (docs/DEVELOPING.md).
RESUME_KEY = "resume"
# Pages a resumable resource takes per pipeline run (per checkpoint) unless the pipeline says otherwise.
DEFAULT_CHECKPOINT_PAGES = 500
# Seconds of fetching per pipeline run (per checkpoint), whatever the pages: what a kill can throw away.
# At the sandbox's speed 500 pages take ~1 s per object and this never binds (benchmarks unchanged); at a
# provider's published rate limit (HubSpot: 10 pages/s) it cuts a checkpoint from ~2,000 pages (500 per
# object, four objects) to ~200.
DEFAULT_CHECKPOINT_SECONDS = 20.0


class PageBudget:
    """How many pages a resumable resource may still take in this pipeline run (one checkpoint): at most
    `pages`, and no new page once the monotonic `deadline` has passed (at least one page, so a checkpoint
    always moves)."""

    def __init__(self, pages: int, deadline: float | None = None) -> None:
        self.remaining = max(1, pages)
        self.deadline = deadline

    @property
    def left(self) -> bool:
        return self.remaining > 0 and (self.deadline is None or time.monotonic() < self.deadline)

    def take(self) -> bool:
        """Count one page; True while more pages fit in this checkpoint."""
        self.remaining -= 1
        return self.left


class Credential:
    """A secret value with a masked repr: printing, logging or tracing it never shows the value."""

    __slots__ = ("_get", "_metadata", "_refresh", "kind", "reference")

    def __init__(self, kind: str, reference: str, getter: Callable[[], str],
                 metadata: Callable[[], dict] | None = None, refresh: Callable[[], str] | None = None) -> None:
        self.kind, self.reference, self._get = kind, reference, getter
        self._metadata, self._refresh = metadata, refresh

    def value(self) -> str:
        return self._get()

    def metadata(self) -> dict:
        """Non-secret fields stored with the credential (e.g. Salesforce's `instance_url`)."""
        return self._metadata() if self._metadata else {}

    @property
    def refreshable(self) -> bool:
        return self._refresh is not None

    def refresh(self) -> str:
        """Refresh now (a provider that returns no expiry, like Salesforce, says so only with a 401)."""
        if self._refresh is None:
            raise RuntimeError("this credential cannot be refreshed")
        return self._refresh()

    def __repr__(self) -> str:
        return f"Credential(kind={self.kind!r}, reference={self.reference!r}, value='***')"

    __str__ = __repr__

    def __reduce__(self):  # never pickled into dlt state or Dagster events
        raise TypeError("credentials are not data and cannot be serialised")


def bearer_auth(credential: Credential) -> Callable[[requests.PreparedRequest], None]:
    def apply(request: requests.PreparedRequest) -> None:
        request.headers["Authorization"] = f"Bearer {credential.value()}"
    return apply


def basic_key_auth(credential: Credential) -> Callable[[requests.PreparedRequest], None]:
    """HTTP Basic with the key as user name and a blank password (Greenhouse v1, Lever keys, Ashby)."""
    def apply(request: requests.PreparedRequest) -> None:
        encoded = base64.b64encode(f"{credential.value()}:".encode()).decode()
        request.headers["Authorization"] = f"Basic {encoded}"
    return apply


def header_key_auth(credential: Credential, header: str) -> Callable[[requests.PreparedRequest], None]:
    """The key in a request header (Pipedrive's `x-api-token`): unlike a query parameter, it never
    appears in URLs, access logs or telemetry."""
    def apply(request: requests.PreparedRequest) -> None:
        request.headers[header] = credential.value()
    return apply


@dataclass
class ConnectionRuntime:
    connection_id: str
    tenant_id: str
    provider: str
    base_url: str
    credential: Credential
    objects: list[str] | None = None
    lookback: timedelta = timedelta(0)
    options: dict = field(default_factory=dict)
    telemetry: Telemetry = field(default_factory=Telemetry)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    verify_tls: bool | str = True
    timeout: float = 30.0
    # Set by a source that stopped early but cleanly (e.g. quota_exhausted after checkpointing the pages
    # loaded so far); the pipeline then commits the load and records the run as `partial`.
    interrupted: CanonryError | None = None
    # Pages a resumable resource takes per pipeline run: set by the pipeline (CANONRY_CHECKPOINT_PAGES).
    checkpoint_pages: int = DEFAULT_CHECKPOINT_PAGES
    # The connection's opt-in to a private-network host (every session's sockets are checked against it).
    allow_private_network: bool = False
    # When the current checkpoint stops taking pages (time.monotonic()): set by the pipeline per batch.
    checkpoint_deadline: float | None = None
    # Whether a source may read a connection's objects concurrently (`CANONRY_CONCURRENT_READS`, default on).
    concurrent_reads: bool = True
    # Shared by every session of the run: the first 401 stops every reader (objects read concurrently).
    credential_halt: CredentialHalt = field(default_factory=CredentialHalt)
    # This run (one `sync` call): a resumable pass that began in another run is followed by a fresh one.
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def page_budget(self) -> PageBudget:
        """The page budget of one resumable resource in the current pipeline run (one checkpoint)."""
        return PageBudget(self.checkpoint_pages, self.checkpoint_deadline)

    def wants(self, object_name: str) -> bool:
        return self.objects is None or object_name in self.objects

    def session(self, auth: Callable[[requests.PreparedRequest], None] | None = None, **kwargs) -> ProviderSession:
        return ProviderSession(self.provider, self.connection_id,
                               auth=auth or bearer_auth(self.credential), telemetry=self.telemetry,
                               retry=self.retry, verify=self.verify_tls, timeout=self.timeout,
                               allow_private_network=self.allow_private_network, halt=self.credential_halt,
                               **kwargs)


# Failures that end a run cleanly at its last checkpoint instead of failing it: the provider is up but
# refuses more calls for now (a 429 storm longer than the retries, a spent daily quota).
STOP_CLASSES = frozenset({ErrorClass.RATE_LIMITED, ErrorClass.QUOTA_EXHAUSTED})


def stops_run(exc: BaseException) -> bool:
    return isinstance(exc, CanonryError) and exc.error_class in STOP_CLASSES


def until_stopped(runtime: ConnectionRuntime, items: Iterable, whole: bool = False) -> Iterator:
    """A resource's items until the provider stops the run (`STOP_CLASSES`, retries spent): then
    `runtime.interrupted` is set and the resource ends cleanly, so what the run's resources yielded is
    committed (status `partial`) and the next run continues. A resource that has not started when another
    one was stopped makes no call; one under way stops at its next item. Its cursor (set when a pass ends)
    stays, so the next run reads that pass again: raw is append-only, staging keeps the latest version.
    `whole`: a resumable pass (`canonry.checkpoints`) stops its own pages and then yields its checkpoint as
    several items (one per raw table) whose state is already set: those are never cut."""
    if runtime.interrupted is not None:
        return
    iterator = iter(items)
    try:
        for item in iterator:
            yield item
            if runtime.interrupted is not None and not whole:
                return
    except CanonryError as exc:
        if not stops_run(exc):
            raise
        runtime.interrupted = exc
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
