"""Per-provider truth comparison for the reliability suites: one row per provider.

Every provider of the registry is in the fault, kill and storm suites; its row is `RELIABILITY` in its own
test module (tests/sources/test_<slug>.py), built from the helpers here: how a test connects to
its sandbox, how canonical tables are compared with the sandbox's truth (the provider's own end-to-end
assertion, or a generic (sandbox object, canonical table) list), which records change between the full
and the incremental sync, and the sandbox scale of a small run (several pages per object).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from canonry.providers import spec
from canonry.transform import run_dbt
from tests.helpers import canonical, lineage, query, truth


def _default_connect(server, connect_sandbox, monkeypatch, connection_id: str, **overrides):
    return connect_sandbox(server, connection_id, **overrides)


def _from_test_module(provider: str, name: str) -> Callable:
    """A helper of the provider's own end-to-end test module (tests/sources/test_<provider>.py)."""
    return getattr(importlib.import_module(f"tests.sources.test_{provider}"), name)


def oauth_connect(provider: str):
    def connect(server, connect_sandbox, monkeypatch, connection_id: str, **overrides):
        return _from_test_module(provider, "oauth_connection")(server, connect_sandbox, monkeypatch, connection_id,
                                                               **overrides)
    return connect


def client_credentials_connect(server, connect_sandbox, monkeypatch, connection_id: str, **overrides):
    env = "CANONRY_TEST_" + connection_id.upper().replace("-", "_")
    return connect_sandbox(server, connection_id, auth={"kind": "client_credentials", "secret": f"env:{env}"},
                           **overrides)


def generic_truth(tables: tuple[tuple[str, str], ...]):
    def check(server, provider: str, connection_id: str) -> None:
        for object_name, table in tables:
            expected = {r["id"]: r for r in truth(server, object_name)}
            rows = canonical(table, provider)
            missing, extra = set(expected) - set(rows), set(rows) - set(expected)
            assert not missing and not extra, (f"{provider} {table}: {len(missing)} missing "
                                               f"(e.g. {sorted(missing)[:3]}), {len(extra)} unexpected")
            wrong = [i for i, r in expected.items() if rows[i]["is_deleted"] != r["deleted"]]
            assert not wrong, f"{provider} {table}: is_deleted differs for {wrong[:5]}"
    return check


def own_truth(name: str, with_connection: bool = False):
    def check(server, provider: str, connection_id: str) -> None:
        assertion = _from_test_module(provider, name)
        if with_connection:
            assertion(server, connection_id)
        else:
            assertion(server)
    return check


@dataclass(frozen=True)
class ProviderCase:
    equals_truth: Callable  # (server, provider, connection_id) -> None, asserts
    mutations: dict[str, dict] = field(default_factory=dict)  # object -> {create, update, delete}
    scale: int = 200
    connect: Callable = _default_connect
    # a hook on the runtime of the incremental sync (e.g. a forced key scan to see deletes)
    incremental_on_start: Callable | None = None
    # the connection id (when the provider's own truth assertion assumes one), the mutation seed
    connection_id: str | None = None
    seed: int = 11
    # connection settings for runs that cannot take a hook (the kill test's subprocesses)
    connection_overrides: dict = field(default_factory=dict)


CRUD = {"create": 3, "update": 5, "delete": 2}


def case(provider: str) -> ProviderCase:
    """The provider's row: `RELIABILITY` in its own test module (tests/sources/test_<slug>.py)."""
    found = getattr(importlib.import_module(f"tests.sources.test_{provider}"), "RELIABILITY", None)
    assert isinstance(found, ProviderCase), (f"declare RELIABILITY = ProviderCase(...) in "
                                             f"tests/sources/test_{provider}.py (tests/reliability/providers.py)")
    return found


def build_canonical(*providers: str) -> None:
    """Seeds and models of the providers' lineage only (one dbt build for them all): these suites compare
    canonical rows with the sandbox's truth themselves; dbt's schema tests run in the provider and demo tests."""
    result = run_dbt(["build", "--select", *lineage(*providers), "--exclude", "resource_type:test"])
    assert result.success, [f"{n.name}: {n.status} {n.message}" for n in result.failures()] or result.error


def rebuild_canonical(*providers: str) -> None:
    """After `build_canonical` of the same providers on this warehouse: their own models and what is
    downstream (`source:<p>+`) only. The seeds and the other providers' models that `@` adds are unchanged
    since that build (no new raw rows for them), so rebuilding them again proves nothing and costs a
    third of the build."""
    result = run_dbt(["build", "--select", *[f"source:{p}+" for p in providers], "--exclude", "resource_type:test"])
    assert result.success, [f"{n.name}: {n.status} {n.message}" for n in result.failures()] or result.error


def assert_equals_truth(server, provider: str, connection_id: str) -> None:
    """Canonical rows of the provider = the sandbox's records, and no canonical table the provider feeds
    holds an id twice."""
    case(provider).equals_truth(server, provider, connection_id)
    for table in spec(provider).canonical_tables:
        counts = query(f"select count(*) as n, count(distinct (connection_id, remote_id)) as d "
                       f"from canonical.{table} where provider = ?", [provider])[0]
        assert counts["n"] == counts["d"], f"{provider} {table}: duplicate ids {counts}"
