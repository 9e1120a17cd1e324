"""Per-provider truth comparison for the reliability suites: one row per provider.

A provider joins the fault, kill and replay suites by adding its row to `TRUTH`: how a test connects to
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


def _oauth(provider: str):
    def connect(server, connect_sandbox, monkeypatch, connection_id: str, **overrides):
        return _from_test_module(provider, "oauth_connection")(server, connect_sandbox, monkeypatch, connection_id,
                                                               **overrides)
    return connect


def _client_credentials(server, connect_sandbox, monkeypatch, connection_id: str, **overrides):
    env = "CANONRY_TEST_" + connection_id.upper().replace("-", "_")
    return connect_sandbox(server, connection_id, auth={"kind": "client_credentials", "secret": f"env:{env}"},
                           **overrides)


def _generic(tables: tuple[tuple[str, str], ...]):
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


def _own(name: str, with_connection: bool = False):
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
TRUTH: dict[str, ProviderCase] = {
    "hubspot": ProviderCase(
        _generic((("contacts", "crm_contacts"), ("companies", "crm_accounts"), ("deals", "crm_opportunities"),
                  ("owners", "crm_users"))),
        {"contacts": CRUD, "companies": CRUD, "deals": CRUD}, scale=230),
    "salesforce": ProviderCase(
        _own("_assert_equals_truth"),
        {name: CRUD for name in ("Account", "Contact", "Lead", "Opportunity", "Task", "Event", "Note")},
        scale=180, connect=_oauth("salesforce")),
    "pipedrive": ProviderCase(
        _own("_assert_equals_truth"),
        {**{name: CRUD for name in ("persons", "organizations", "deals", "activities", "notes")},
         "leads": {"create": 2, "update": 4}}, scale=200),
    "greenhouse": ProviderCase(
        _own("assert_equals_truth", with_connection=True),
        {name: {"create": 3, "update": 4, "delete": 2} for name in ("candidates", "applications", "jobs")},
        scale=200, connect=_client_credentials,
        incremental_on_start=lambda runtime: runtime.options.update(force_key_scan=True),
        # no delete feed: a key scan on every run shows deletes to the kill test's plain re-runs
        connection_overrides={"deletes": {"full_scan_every": "1s"}}),
    "lever": ProviderCase(
        _own("assert_equals_truth"),
        {"opportunities": {"create": 4, "update": 8, "delete": 3}, "interviews": CRUD, "offers": CRUD},
        scale=150, connect=_oauth("lever"), connection_id="lever-acme"),
    "ashby": ProviderCase(
        _own("_assert_equals_truth", with_connection=True),
        {"candidates": {"create": 3, "update": 5}, "applications": {"create": 3, "update": 4, "delete": 2},
         "offers": {"create": 2, "update": 3, "delete": 2}}, scale=230),
}


def build_canonical(provider: str) -> None:
    """Seeds and models of the provider's lineage only: these suites compare canonical rows with the
    sandbox's truth themselves; dbt's schema tests run in the provider and demo tests."""
    result = run_dbt(["build", "--select", *lineage(provider), "--exclude", "resource_type:test"])
    assert result.success, [f"{n.name}: {n.status} {n.message}" for n in result.failures()] or result.error


def assert_equals_truth(server, provider: str, connection_id: str) -> None:
    """Canonical rows of the provider = the sandbox's records, and no canonical table the provider feeds
    holds an id twice."""
    TRUTH[provider].equals_truth(server, provider, connection_id)
    for table in spec(provider).canonical_tables:
        counts = query(f"select count(*) as n, count(distinct (connection_id, remote_id)) as d "
                       f"from canonical.{table} where provider = ?", [provider])[0]
        assert counts["n"] == counts["d"], f"{provider} {table}: duplicate ids {counts}"
