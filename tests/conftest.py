"""Shared fixtures: an isolated data dir per test, sandboxes over real HTTP, connections for them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

# Host names resolve from a file, never from DNS (canonry.netsafety): set before anything resolves, and
# inherited by every subprocess the tests start.
os.environ.setdefault("CANONRY_HOSTS_FILE", str(Path(__file__).parent / "fixtures" / "hosts"))

from canonry.config import ConnectionsFile  # noqa: E402
from canonry.sandbox import DEFAULT_TOKENS, start_sandbox
from canonry.sandbox.engine import SandboxServer
from canonry.validation import load_connections

# Rough serial durations (seconds) of the long tests on the 2-core CI machine, by node id prefix (the
# longest matching prefix counts). `make test` runs under pytest-xdist: the longest tests start first and
# the short ones fill the gaps, so that no long test starts last. A missing entry only costs balance.
EXPECTED_SECONDS = {
    "tests/reliability/test_fault_suite.py": 60,
    "tests/reliability/test_fault_suite.py::test_full_and_incremental_sync_under_faults_equal_truth[greenhouse]": 130,
    "tests/reliability/test_fault_suite.py::test_full_and_incremental_sync_under_faults_equal_truth[lever]": 90,
    "tests/reliability/test_kill.py": 55,
    "tests/reliability/test_kill.py::test_sigkill_while_the_sandboxes_mutate": 120,  # six kill points, six providers
    "tests/reliability/test_concurrency.py::test_two_concurrent": 70,
    "tests/reliability/test_concurrency.py::test_a_killed": 30,
    "tests/reliability/test_rate_limit_storm.py": 50,
    # Lever's storm starts after page one's ~200 child calls; the second run reads the rest (10 requests/s)
    "tests/reliability/test_rate_limit_storm.py::test_a_429_storm_past_the_retries_ends_partial_and_the_next_run_resumes_to_truth[lever]": 75,
    "tests/reliability/test_revoke_and_replay.py::test_replay": 70,
    "tests/reliability/test_revoke_and_replay.py::test_rerunning": 35,
    "tests/reliability/test_checkpoints.py::test_a_run_that_fails": 20,
    "tests/reliability/test_checkpoints.py::test_lever": 50,   # ~320 calls at Lever's 10 requests/s
    "tests/sources/test_pipedrive.py::test_a_record_updated_then_deleted": 35,   # two syncs and a dbt build
    "tests/reliability/test_dagster_alerts.py": 15,
    "tests/api/test_read_api": 60,
    "tests/test_readme_walkthrough.py": 260,  # the demo twice and the README commands (one world)
    "tests/test_dbt_project.py::test_dbt_build": 130,
    "tests/test_dbt_project.py::test_changing": 20,
    "tests/rollout/": 60,   # one xdist unit (SHARED_STATE): a synced world, shadow builds, a Dagster run
    "tests/test_cli_output.py": 40,
    "tests/reverse_etl/": 90,   # one xdist unit (SHARED_STATE) of ~11 min: start it early; equal weights keep file order
    "tests/dagster/test_definitions.py": 55,
    "tests/dagster/test_user_runs.py::test_one_connection": 200,
    "tests/dagster/test_user_runs.py::test_partitions": 45,
    "tests/sources/test_lever.py::test_full_then_incremental": 75,
    "tests/sources/test_hubspot.py::test_full_then_incremental": 45,
    "tests/sources/test_hubspot.py::test_search_cap": 35,
    "tests/sources/test_salesforce.py::test_full_then_incremental": 40,
    "tests/sources/test_greenhouse.py::test_full_incremental": 30,
    "tests/sources/test_ashby.py::test_full_then_incremental": 27,
    "tests/sources/test_ashby.py::test_refused_sync_tokens": 20,
    "tests/sources/test_pipedrive.py::test_full_then_incremental": 18,
    "tests/sources/test_pipedrive.py::test_a_reporting_currency": 40,   # two lineage builds (USD, then CHF)
    "tests/sources/test_pipedrive_custom_fields.py": 45,
    "tests/sources/test_hubspot_custom_fields.py": 45,
    "tests/sources/test_workable.py::test_full_then_incremental": 60,   # its 10 requests / 10 s limit
    "tests/webhooks/test_workable.py": 30,
    "tests/postgres/test_same_rows.py": 100,  # one dbt build per warehouse: 94 s of CPU measured
    "tests/test_incremental_marts.py": 60,
    "tests/postgres/test_pg_leaks.py": 45,
    "tests/postgres/test_sql_run.py": 40,
    "tests/postgres/test_parallel_sync.py": 90,   # its module fixture: sync --jobs 3 + one dbt build on PostgreSQL
    "tests/dagster/test_postgres_warehouse.py": 120,
    "tests/webhooks/test_drain.py::test_greenhouse_sandbox_deletes": 40,
    "tests/webhooks/test_drain.py::test_pipedrive_events": 30,
    "tests/webhooks/test_providers.py::test_ashby_lever_and_hubspot": 35,
    "tests/webhooks/test_intake.py": 12,
    "tests/governance/test_dsar.py": 160,
    "tests/governance/test_retention.py": 30,
}


def _expected_seconds(item: pytest.Item) -> float:
    matches = [prefix for prefix in EXPECTED_SECONDS if item.nodeid.startswith(prefix)]
    return EXPECTED_SECONDS[max(matches, key=len)] if matches else 0.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest tests first (a stable sort: tests of equal weight, e.g. one module's, keep their order)."""
    items.sort(key=lambda item: -_expected_seconds(item))


# Tests that share state (a module-scoped world, run in file order) go to one xdist worker, whole. Every
# other test is its own unit of work: it needs nothing but its own data dir, sandboxes and ports.
# tests/test_dbt_project.py: its contract test changes a type on the warehouse the build test filled (module fixture).
# tests/api/test_read_api*: the read API's world, shared by the read tests and then the outbound-event tests.
SHARED_STATE = ("tests/reverse_etl/", "tests/api/test_read_api", "tests/test_dbt_project.py", "tests/rollout/")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadgroup` with the groups above. (xdist's own `xdist_group` marker does not group with
    pytest >= 9.1: it renames `item._nodeid`, which pytest no longer reads.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedStateScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return next((prefix for prefix in SHARED_STATE if nodeid.startswith(prefix)), nodeid)

    return SharedStateScheduling(config, log)


@pytest.fixture
def data_dir(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh CANONRY_DATA_DIR (warehouse, dlt state, dbt target, secrets) for one test.

    It is empty at the start of every test, but always at the same path within one pytest process (one
    xdist worker): dbt's partial parsing is keyed on the profile, which holds the warehouse path, so a
    fixed path lets each test start from the previous test's `partial_parse.msgpack` instead of parsing
    the whole project again (~12 s of CPU per test; see `restore_partial_parse`). After the test the directory moves to
    `<tmp_path>/data`, where a failed test's warehouse and logs can be read as before."""
    root = tmp_path_factory.getbasetemp()
    path = root / "canonry-data"
    if path.exists():  # a test that crashed before its teardown: keep its files aside
        path.rename(root / f"canonry-data-orphan-{tmp_path.name}")
    (path / "dbt_target").mkdir(parents=True)
    monkeypatch.setenv("CANONRY_DATA_DIR", str(path))
    monkeypatch.delenv("CANONRY_WAREHOUSE", raising=False)
    monkeypatch.delenv("CANONRY_DBT_TARGET_PATH", raising=False)
    monkeypatch.setenv("CANONRY_KEY_FILE", str(tmp_path / "keys" / "master.key"))
    restore_partial_parse(tmp_path_factory, path)
    yield path
    _close_dbt_duckdb_environment()
    # Saved under the warehouse the test ended on (still in the environment: monkeypatch is undone later).
    save_partial_parse(tmp_path_factory, path)
    path.rename(tmp_path / "data")
    _assert_no_open_warehouse(path / "warehouse.duckdb")


PARTIAL_PARSE = "partial_parse.msgpack"


def _partial_parse_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This process's copy of dbt's partial-parse state for the warehouse now in the environment: one per
    profile (DuckDB at the fixed data dir path, or a PostgreSQL database), so that a PostgreSQL test does
    not leave a PostgreSQL manifest for the next DuckDB test to throw away (a full parse each way)."""
    import hashlib

    profile = os.environ.get("CANONRY_WAREHOUSE", "duckdb")
    key = hashlib.sha256(profile.encode()).hexdigest()[:12]
    return tmp_path_factory.getbasetemp() / f"dbt-partial-parse-{key}.msgpack"


def restore_partial_parse(tmp_path_factory: pytest.TempPathFactory, data: Path) -> None:
    """Put the partial-parse state of the current profile into `<data>/dbt_target` (none yet: dbt parses)."""
    cache, target = _partial_parse_cache(tmp_path_factory), data / "dbt_target" / PARTIAL_PARSE
    if cache.exists():
        shutil.copyfile(cache, target)
    else:
        target.unlink(missing_ok=True)


def save_partial_parse(tmp_path_factory: pytest.TempPathFactory, data: Path) -> None:
    target = data / "dbt_target" / PARTIAL_PARSE
    if target.exists():
        shutil.copyfile(target, _partial_parse_cache(tmp_path_factory))


def _close_dbt_duckdb_environment() -> None:
    """dbt-duckdb keeps its database open in-process after an invocation (a class-level environment,
    replaced only when the profile's path changes). The next test has the same path: close it now."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    environment = getattr(DuckDBConnectionManager, "_ENV", None)
    DuckDBConnectionManager.close_all_connections()
    if environment is not None:
        environment.close()


def _assert_no_open_warehouse(path: Path) -> None:
    """The next test reuses this path: DuckDB hands an open database to any new connection to the same
    path in this process, so a connection the test left open would carry its warehouse into the next
    test. With the directory moved away, a new connection can only fail (nothing to open there)."""
    import gc

    import duckdb

    gc.collect()  # connections dropped without close() (e.g. in reference cycles) close when collected
    try:
        leaked = duckdb.connect(str(path))
    except duckdb.Error:
        return
    leaked.close()
    pytest.fail(f"a DuckDB connection to {path} was left open by the test")


@pytest.fixture
def sandbox_factory() -> Iterator:
    """start(slug, **options) -> a running SandboxServer, stopped after the test."""
    started: list[SandboxServer] = []

    def start(slug: str, **options) -> SandboxServer:
        server = start_sandbox(slug, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def write_connections(path: Path, connections: list[dict]) -> ConnectionsFile:
    """The file, validated as `canonry sync --no-transform` does: most tests' sandbox connections sync a subset
    of one provider's objects to exercise its extraction (`pipeline.sync`: checkpoints, scopes, faults), and
    nothing builds dbt on them, so a subset that would fail dbt's relationships tests (`objects_incomplete`)
    is accepted here. A test that builds dbt lists complete objects (tests/test_transform_lineage.py,
    tests/test_incremental_marts.py); `canonry validate` and `canonry sync` refuse the rest
    (tests/fixtures/connections/objects_incomplete.yml)."""
    path.write_text(yaml.safe_dump({"connections": connections}, sort_keys=False))
    return load_connections(path, builds_canonical=False)


@pytest.fixture
def connect_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """connect(server, connection_id=..., **overrides) -> a validated Connection pointed at the sandbox,
    its credential in an environment variable (env:CANONRY_TEST_<ID>)."""
    connections: list[dict] = []

    def connect(server: SandboxServer, connection_id: str | None = None, token: str | None = None, **overrides):
        slug = server.simulator.slug
        connection_id = connection_id or f"{slug}-test"
        env_name = "CANONRY_TEST_" + connection_id.upper().replace("-", "_")
        monkeypatch.setenv(env_name, token or DEFAULT_TOKENS.get(slug, f"sandbox-{slug}-token"))
        entry = {"id": connection_id, "tenant": overrides.pop("tenant", "acme"), "provider": slug,
                 "auth": overrides.pop("auth", {"kind": "api_key", "secret": f"env:{env_name}"}),
                 "base_url": server.base_url, **overrides}
        connections.append(entry)
        model = write_connections(tmp_path / "connections.yml", connections)
        return model.get(connection_id)

    return connect



@pytest.fixture
def warehouse(request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The warehouse a test runs on: "duckdb" (the data dir's file) or "postgres" (a database of its own,
    dropped afterwards). Parametrise with `tests.pg.WAREHOUSES` (indirect=True); the default is DuckDB."""
    kind = getattr(request, "param", "duckdb")
    if kind != "postgres":
        yield kind
        return
    from tests.pg import temporary_database

    # One database name per pytest process (dropped and created again for each test): dbt's profile, and
    # so its partial-parse state, stays the same from one PostgreSQL test to the next.
    with temporary_database(reuse_name=True) as url:
        monkeypatch.setenv("CANONRY_WAREHOUSE", url)
        restore_partial_parse(tmp_path_factory, data_dir)
        yield kind
