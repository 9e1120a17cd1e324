"""The provider registry: one typed, frozen `ProviderSpec` per provider, declared once as `SPEC` in its own
`sources/<slug>/settings.py` and found by scanning the `sources` package.

Everything the kit needs to know about a provider — which auth kinds and scopes it takes, where its API and
OAuth server live, its published rate limit, its objects, how deletes are detected, which canonical tables it
feeds, how its webhooks are signed, what reverse ETL may write — is read from here. No other module keeps a
list of providers: adding a folder under `sources/` (`canonry scaffold provider`) is adding a provider.

A spec is checked when its settings module is imported: a misspelled field is a `ProviderSpecError` naming
the file, and so is a value the kit could not use (an unknown family or auth kind, a canonical table the
contract does not have, a scope for an object the provider does not read).

The registry imports `sources.<slug>.settings` by name, never statically: the kit does not depend on any
provider (docs/ARCHITECTURE.md, "Dependency rule").
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Literal

from canonry.canonical import TABLES

Family = Literal["ats", "crm"]
AuthKind = Literal["api_key", "oauth2", "client_credentials"]
# How records deleted at the provider are found (docs/DEVELOPING.md, "Deletes").
DeleteDetection = Literal["key_scan", "full_pass", "deleted_feed", "recents", "archived_listing", "get_deleted"]

FAMILIES: tuple[str, ...] = ("ats", "crm")
AUTH_KINDS: tuple[str, ...] = ("api_key", "oauth2", "client_credentials")
DELETE_DETECTIONS: tuple[str, ...] = ("key_scan", "full_pass", "deleted_feed", "recents", "archived_listing",
                                      "get_deleted")
SOURCES_PACKAGE = "sources"


class ProviderSpecError(Exception):
    """A provider's `settings.py` declares something the kit cannot use (the message names the file)."""


class UnknownProvider(KeyError):
    """No folder under `sources/` declares this slug."""

    def __init__(self, slug: str) -> None:
        super().__init__(slug)
        self.slug = slug

    def __str__(self) -> str:
        return f"unknown provider {self.slug!r} (known: {', '.join(slugs())})"


@dataclass(frozen=True)
class RateLimit:
    """The provider's published limit: `requests` per `seconds` (seeds every connection's budget)."""

    requests: int
    seconds: float


@dataclass(frozen=True)
class ProviderObject:
    """One object the source reads: its raw table name, key, incremental cursor and page size, and the
    canonical tables its records become rows of (`feeds`: not every mart its raw table is joined into).
    `canonry validate` reads `feeds` to refuse an `objects:` list whose rows would reference rows no listed
    object feeds (a dbt relationships test would fail)."""

    name: str
    primary_key: str = "remote_id"
    cursor: str | None = None        # the provider field incremental reads filter on; None: read whole
    page_size: int | None = None     # what we ask for per page; None: the provider does not page it
    feeds: tuple[str, ...] = ()      # canonical tables this object's records become rows of


@dataclass(frozen=True)
class OAuthSpec:
    """Where the provider's authorization server lives. `*_url` is the published endpoint; `*_path` is
    joined to a connection's `base_url` (a sandbox or regional host serves its own authorization server);
    a path alone is joined to `base_url`. `client_credentials`: tokens are minted from a client id/secret."""

    authorize_url: str | None = None
    authorize_path: str | None = None
    token_url: str | None = None
    token_path: str | None = None
    revoke_url: str | None = None
    revoke_path: str | None = None
    base_scopes: tuple[str, ...] = ()        # always requested (refresh tokens, `oauth`, …)
    audience: str | None = None              # Auth0: sent on authorize and on every token request
    token_auth_method: str = "client_secret_post"
    access_token_seconds: int | None = None  # when the token answer carries no expiry
    client_credentials: bool = False


@dataclass(frozen=True)
class WebhookSpec:
    """How the provider signs webhook deliveries and what the connection's `webhooks:` block must hold."""

    scheme: str
    settings: tuple[str, ...] = ("secret",)
    # Where the provider has no API for this connection to subscribe (no `register` in its adapter): the step
    # the user takes in the provider's UI, `{url}` being the intake URL (`canonry webhooks register` says it).
    ui_step: str | None = None


@dataclass(frozen=True)
class ProbeSpec:
    """The canary's probe: the provider's cheapest authenticated read (one small page of a small list). It goes
    through the source's own session (`session_for(runtime)` in its helpers.py, else the plain session) to the
    source's API root (`api_base(runtime)` in its helpers.py, else the connection's base URL)."""

    method: str
    path: str
    params: Mapping[str, object] | None = None
    json: Mapping[str, object] | None = None


@dataclass(frozen=True)
class ProviderSpec:
    """Everything the kit reads about one provider. Declared once, as `SPEC` in `sources/<slug>/settings.py`."""

    slug: str
    family: Family
    title: str
    auth_kinds: tuple[AuthKind, ...]
    base_url: str
    rate_limit: RateLimit
    objects: tuple[ProviderObject, ...]
    deletes: DeleteDetection
    canonical_tables: tuple[str, ...]
    read_scopes: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    write_scopes: Mapping[str, str] = field(default_factory=dict)
    opt_in_objects: tuple[str, ...] = ()     # read only when a connection lists them in `objects`
    resumable: tuple[str, ...] = ()          # objects that checkpoint mid-read (docs/DEVELOPING.md)
    oauth: OAuthSpec | None = None
    webhook: WebhookSpec | None = None
    write_back: tuple[str, ...] = ()         # objects reverse ETL pushes (sources/<slug>/actions.py)
    postgres_models: bool = True             # its dbt models run on PostgreSQL too (not only DuckDB)
    # Raw payload fields carrying personal data, per raw table (docs/GOVERNANCE.md: a DSAR erasure empties
    # them in the person's own records at any depth).
    personal_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    probe: ProbeSpec | None = None           # the canary's request (canonry/canary.py)

    def __post_init__(self) -> None:
        # Mappings are frozen too: a spec is shared by every connection of the process.
        object.__setattr__(self, "read_scopes", MappingProxyType(dict(self.read_scopes)))
        object.__setattr__(self, "write_scopes", MappingProxyType(dict(self.write_scopes)))
        object.__setattr__(self, "personal_fields", MappingProxyType(dict(self.personal_fields)))
        problems = list(_problems(self))
        if problems:
            raise ProviderSpecError(f"provider spec {self.slug!r}: " + "; ".join(problems))

    @property
    def object_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.objects)

    @property
    def default_objects(self) -> tuple[str, ...]:
        """What a connection without an `objects:` list syncs (every object but the opt-in ones)."""
        return tuple(o.name for o in self.objects if o.name not in self.opt_in_objects)

    def objects_feeding(self, table: str) -> tuple[str, ...]:
        """The objects whose records become rows of canonical `table` (none: the provider does not fill it)."""
        return tuple(o.name for o in self.objects if table in o.feeds)

    def object(self, name: str) -> ProviderObject:
        for candidate in self.objects:
            if candidate.name == name:
                return candidate
        raise KeyError(f"{self.slug} has no object {name!r}")


def _problems(spec: ProviderSpec):
    """What the kit could not use in a spec, one sentence each."""
    if spec.family not in FAMILIES:
        yield f"family {spec.family!r} is not one of {', '.join(FAMILIES)}"
    unknown_kinds = [k for k in spec.auth_kinds if k not in AUTH_KINDS]
    if unknown_kinds or not spec.auth_kinds:
        yield f"auth_kinds {spec.auth_kinds!r} must be some of {', '.join(AUTH_KINDS)}"
    if ("oauth2" in spec.auth_kinds or "client_credentials" in spec.auth_kinds) and spec.oauth is None:
        yield "an oauth2 or client_credentials provider needs `oauth=OAuthSpec(...)` (its token endpoint)"
    if spec.deletes not in DELETE_DETECTIONS:
        yield f"deletes {spec.deletes!r} is not one of {', '.join(DELETE_DETECTIONS)}"
    if spec.rate_limit.requests <= 0 or spec.rate_limit.seconds <= 0:
        yield "rate_limit needs positive requests and seconds"
    names = spec.object_names
    if len(set(names)) != len(names) or not names:
        yield "objects must be non-empty with unique names"
    for label, keys in (("read_scopes", spec.read_scopes), ("write_scopes", spec.write_scopes),
                        ("opt_in_objects", spec.opt_in_objects), ("resumable", spec.resumable),
                        ("write_back", spec.write_back)):
        stray = [k for k in keys if k not in names]
        if stray:
            yield f"{label} names objects the provider does not read: {', '.join(stray)}"
    stray = [w for w in spec.write_back if w not in spec.write_scopes]
    if stray:
        yield f"write_back objects need a write scope: {', '.join(stray)}"
    stray = [f"{o.name} feeds {t}" for o in spec.objects for t in o.feeds if t not in spec.canonical_tables]
    if stray:
        yield f"objects feed tables not in canonical_tables: {', '.join(stray)}"
    wrong = [t for t in spec.canonical_tables if t not in TABLES or not t.startswith(f"{spec.family}_")]
    if wrong or not spec.canonical_tables:
        yield f"canonical_tables must be {spec.family}_* tables of the contract (canonry/canonical.py): " + \
              (", ".join(wrong) or "none given")


# -- discovery -------------------------------------------------------------------------------------------

def _load(package: str, slug: str, where: Path) -> ProviderSpec:
    """Import `<package>.<slug>.settings` and return its SPEC, or fail naming the file."""
    try:
        module = importlib.import_module(f"{package}.{slug}.settings")
    except TypeError as exc:   # ProviderSpec(...) with a field it does not have (a typo)
        known = ", ".join(f.name for f in fields(ProviderSpec))
        raise ProviderSpecError(f"{where}: {exc} (ProviderSpec fields: {known})") from exc
    except ProviderSpecError as exc:
        raise ProviderSpecError(f"{where}: {exc}") from exc
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, ProviderSpec):
        raise ProviderSpecError(f"{where}: declares no `SPEC = ProviderSpec(...)` (docs/DEVELOPING.md)")
    if spec.slug != slug:
        raise ProviderSpecError(f"{where}: SPEC.slug is {spec.slug!r} but the folder is {slug!r} (one slug "
                                "per provider everywhere)")
    return spec


def scan(package: str = SOURCES_PACKAGE) -> dict[str, ProviderSpec]:
    """The spec of every sub-package of `package` that has a settings.py, by slug (sorted)."""
    found: dict[str, ProviderSpec] = {}
    for info in sorted(pkgutil.iter_modules(importlib.import_module(package).__path__), key=lambda i: i.name):
        where = Path(info.module_finder.path) / info.name / "settings.py"
        if info.ispkg and where.is_file():
            found[info.name] = _load(package, info.name, where)
    return found


@functools.cache
def registry() -> Mapping[str, ProviderSpec]:
    """Every provider: each folder under `sources/` with a settings.py, by slug (sorted). Scanned once."""
    return MappingProxyType(scan())


def slugs(family: str | None = None) -> tuple[str, ...]:
    """The provider slugs, sorted; only one family's with `family`."""
    return tuple(s for s, spec in registry().items() if family is None or spec.family == family)


def spec(slug: str) -> ProviderSpec:
    """The spec of provider `slug`; `UnknownProvider` (a KeyError) when no folder declares it."""
    try:
        return registry()[slug]
    except KeyError:
        raise UnknownProvider(slug) from None


def is_provider(slug: str) -> bool:
    return slug in registry()


def settings(slug: str) -> ModuleType:
    """A provider's settings module, for its own data beyond the spec (endpoint tables and the like)."""
    spec(slug)   # an unknown slug is UnknownProvider, not an ImportError
    return importlib.import_module(f"{SOURCES_PACKAGE}.{slug}.settings")


def source_module(slug: str, part: str | None = None) -> ModuleType:
    """`sources.<slug>` (the dlt source), or one of its modules (`actions`, `helpers`)."""
    spec(slug)
    return importlib.import_module(f"{SOURCES_PACKAGE}.{slug}" + (f".{part}" if part else ""))


def tables_fed_by(providers) -> tuple[str, ...]:
    """The canonical tables some of `providers` feed, each once, in first-seen order."""
    return tuple(dict.fromkeys(t for p in providers for t in spec(p).canonical_tables))
