"""The webhook drain in Dagster: the definitions carry `webhooks_drain_job` and its sensor when a connection
receives webhooks; the sensor skips without pending events and requests a run with them; the job, run as a
user runs it (`dagster job execute`, multiprocess executor), applies the events and records the dbt models
it rebuilt as materialisations."""

from __future__ import annotations

from dagster import RunRequest, SkipReason, build_sensor_context

from canonry.pipeline import sync
from tests.conftest import _close_dbt_duckdb_environment
from tests.dagster.test_definitions import _load_definitions
from tests.dagster.test_user_runs import dagster, instance_env, last_run
from tests.helpers import canonical, mutate
from tests.webhooks.helpers import WebhookServer, journal_rows, set_secret_env, webhook_block


def test_sensor_requests_a_drain_run_that_materialises_the_canonical_tables(data_dir, sandbox_factory,
                                                                            connect_sandbox, tmp_path, monkeypatch):
    set_secret_env(monkeypatch)
    sandbox = sandbox_factory("greenhouse", scale=20)
    config = tmp_path / "connections.yml"
    connection = connect_sandbox(sandbox, "greenhouse-acme", webhooks=webhook_block("greenhouse"),
                                 auth={"kind": "client_credentials", "secret": "env:CANONRY_TEST_GREENHOUSE_ACME"})
    assert sync(connection).status == "success"
    defs = _load_definitions(monkeypatch, config).defs
    sensor = defs.get_sensor_def("canonry_webhooks_drain")
    assert defs.get_job_def("webhooks_drain_job") is not None

    skipped = sensor(build_sensor_context())
    assert isinstance(skipped, SkipReason) and "no webhook journal" in skipped.skip_message

    intake = WebhookServer(config).start()
    try:
        sandbox.state.webhook_url = intake.hook(connection.id)
        deleted = mutate(sandbox, "candidates", delete=1, seed=3)["delete"]
    finally:
        intake.stop()
    requested = sensor(build_sensor_context())
    assert isinstance(requested, RunRequest)
    assert requested.run_key == f"webhooks-{journal_rows(data_dir)[-1]['seq']}-1"

    _close_dbt_duckdb_environment()
    env = instance_env(tmp_path, config)
    executed = dagster(["job", "execute", "-j", "webhooks_drain_job"], env)
    assert executed.returncode == 0, executed.stderr[-3000:]
    run, materialised = last_run(env)
    assert run.job_name == "webhooks_drain_job"
    assert {("canonical/ats_candidates", None), ("staging/stg_greenhouse__candidates", None)} <= materialised
    assert [r["state"] for r in journal_rows(data_dir)] == ["applied"]
    assert canonical("ats_candidates", "greenhouse")[deleted[0]]["is_deleted"]

    after = sensor(build_sensor_context())
    assert isinstance(after, SkipReason) and after.skip_message == "no pending webhook events"
