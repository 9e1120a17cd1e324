"""`canonry scaffold provider <slug> --family ats|crm`: the folders and files a new provider needs.

It writes a `sources/<slug>/` package whose `settings.py` declares a valid `ProviderSpec` (the registry finds
it at once, so every suite parametrised over providers includes the new one and fails until it is built), a
source and helpers skeleton, the dbt staging and intermediate folders with the raw source declared, and an
end-to-end test module. Nothing existing is overwritten: a slug already taken is an error that writes
nothing. docs/DEVELOPING.md, "Adding a provider", is the step list that follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from canonry.canonical import ATS_TABLES, CRM_TABLES
from canonry.errors import ConfigError

SLUG = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
FAMILY_TABLES: dict[str, tuple[str, ...]] = {"ats": tuple(ATS_TABLES), "crm": tuple(CRM_TABLES)}

SETTINGS = '''"""{title}: what we read, declared as data (API notes: sources/{slug}/README.md)."""

from __future__ import annotations

from canonry.providers import ProbeSpec, ProviderObject, ProviderSpec, RateLimit

DEFAULT_BASE_URL = "https://api.{slug}.example"   # TODO: the provider's API host
PAGE_SIZE = 100                                    # TODO: the maximum page size the provider allows
SETTLE_SECONDS = 5                                 # never advance a cursor past now - this

# TODO: one entry per object the source reads (raw table raw_{slug}.<name>).
OBJECTS: tuple[str, ...] = ("records",)
# TODO: per object, the canonical tables its records become rows of (`canonry validate` refuses an `objects:`
# list leaving out what a listed object's rows reference; tests/test_object_feeds.py checks it against dbt).
FEEDS: dict[str, tuple[str, ...]] = {{}}
READ_SCOPES: dict[str, str] = {{}}
WRITE_SCOPES: dict[str, str] = {{}}

SPEC = ProviderSpec(
    slug="{slug}", family="{family}", title="{title}",
    auth_kinds=("api_key",),                 # TODO: and "oauth2" / "client_credentials" with oauth=OAuthSpec(...)
    base_url=DEFAULT_BASE_URL,
    rate_limit=RateLimit(10, 1.0),           # TODO: the provider's published limit (requests, per seconds)
    objects=tuple(ProviderObject(name, cursor="updated_at", page_size=PAGE_SIZE,
                                 feeds=FEEDS.get(name, ())) for name in OBJECTS),
    deletes="key_scan",                      # TODO: deleted_feed | recents | archived_listing | full_pass | ...
    canonical_tables=(
{tables}
    ),
    read_scopes=READ_SCOPES, write_scopes=WRITE_SCOPES,
    probe=ProbeSpec("GET", "/records", {{"limit": 1}}),   # TODO: the cheapest authenticated read (the canary's)
)
'''

SOURCE = '''"""{title} source: {family} objects into `raw_{slug}` (API notes: sources/{slug}/README.md)."""

from __future__ import annotations

from collections.abc import Iterator

import dlt
import pyarrow as pa

from canonry.raw import RAW_COLUMNS_HINT
from canonry.runtime import ConnectionRuntime, until_stopped

from .helpers import pages
from .settings import OBJECTS


@dlt.source(name="{slug}", max_table_nesting=0)
def source(runtime: ConnectionRuntime):
    """One append-only resource per object the connection syncs."""
    for name in OBJECTS:
        if runtime.wants(name):
            yield dlt.resource(until_stopped(runtime, _object(runtime, name)), name=name, write_disposition="append",
                               columns=RAW_COLUMNS_HINT)


def _object(runtime: ConnectionRuntime, name: str) -> Iterator[pa.Table]:
    """Whole pages as pyarrow tables (canonry.raw.raw_page); the cursor in resource state (docs/DEVELOPING.md)."""
    yield from pages(runtime, name)
'''

HELPERS = '''"""{title} quirks: pagination, auth header, error bodies (everything the settings cannot say as data)."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from canonry.runtime import ConnectionRuntime


def pages(runtime: ConnectionRuntime, name: str) -> Iterator[pa.Table]:
    """Every page of one object, each as one raw table (canonry.raw.raw_page)."""
    raise NotImplementedError(f"sources/{slug}/helpers.py: read {{name}} page by page (docs/DEVELOPING.md)")
'''

README = '''# {title}

API notes for `sources/{slug}/` (docs/DEVELOPING.md, "Adding a provider", step 1): authentication, base URLs,
pagination, rate limits and their headers, incremental cursors, how deletes are found, webhooks.

## Mapping

| canonical table | provider object | notes |
|---|---|---|
{mapping}

## Limitations
'''

DBT_SOURCES = '''version: 2
sources:
  - name: {slug}
    schema: raw_{slug}
    description: {title} pages as loaded by sources/{slug} (append-only, payload kept whole).
    loaded_at_field: extracted_at
    tables:
{tables}
'''

TEST = '''"""{title} end to end against its sandbox: full sync, mutate, incremental sync equals the sandbox's truth."""

from __future__ import annotations

from canonry.pipeline import sync
from canonry.providers import spec
from canonry.transform import build
from tests.helpers import canonical


def test_full_then_incremental(data_dir, sandbox_factory, connect_sandbox):
    server = sandbox_factory("{slug}", scale=50)
    connection = connect_sandbox(server, "{slug}-acme")
    assert sync(connection).status == "success"
    assert build().success
    for table in spec("{slug}").canonical_tables:
        assert canonical(table, "{slug}"), f"{{table}} has no {slug} rows"
'''


@dataclass(frozen=True)
class Scaffolded:
    slug: str
    files: tuple[Path, ...]


def _files(slug: str, family: str, title: str) -> dict[str, str]:
    tables = FAMILY_TABLES[family]
    return {
        f"sources/{slug}/__init__.py": SOURCE.format(slug=slug, family=family, title=title),
        f"sources/{slug}/settings.py": SETTINGS.format(
            slug=slug, family=family, title=title, tables="\n".join(f'        "{t}",' for t in tables)),
        f"sources/{slug}/helpers.py": HELPERS.format(slug=slug, title=title),
        f"sources/{slug}/README.md": README.format(slug=slug, title=title,
                                                   mapping="\n".join(f"| `{t}` | | |" for t in tables)),
        f"dbt/models/staging/{slug}/_{slug}__sources.yml": DBT_SOURCES.format(
            slug=slug, title=title, tables="      - name: records"),
        f"dbt/models/intermediate/{slug}/.gitkeep": "",
        f"tests/sources/test_{slug}.py": TEST.format(slug=slug, title=title),
    }


def scaffold_provider(slug: str, family: str, root: Path, title: str | None = None) -> Scaffolded:
    """Write a new provider's files under `root` (the repository); ConfigError, with nothing written, for a
    bad slug or family or a slug whose files exist."""
    if not SLUG.match(slug):
        raise ConfigError(f"provider slug {slug!r} is not lower case letters, digits and _ (2-31 characters)",
                          provider=slug, hint="use the provider's name as one word, e.g. workable")
    if family not in FAMILY_TABLES:
        raise ConfigError(f"family {family!r} is not one of {', '.join(FAMILY_TABLES)}", provider=slug, hint="--family ats|crm")
    files = {root / path: text for path, text in _files(slug, family, title or slug.capitalize()).items()}
    taken = [str(p.relative_to(root)) for p in files if p.exists()]
    if taken:
        raise ConfigError(f"provider {slug!r} already has files: {', '.join(taken)}",
                          provider=slug, hint="choose another slug, or remove those files first")
    package = root / "sources" / "__init__.py"
    if not package.exists():
        files[package] = '"""dlt sources, one folder per provider."""\n'
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return Scaffolded(slug, tuple(sorted(files)))
