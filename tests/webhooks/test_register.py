"""`canonry webhooks register` through the CLI against the sandboxes: Pipedrive and Lever subscriptions
created through their APIs (the sandbox then delivers to the registered URL, with the registered basic
auth for Pipedrive); Greenhouse, which has no API for it, fails naming the UI step and registers nothing."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import mutate
from tests.webhooks.helpers import (
    PIPEDRIVE_USER,
    WebhookServer,
    journal_rows,
    set_secret_env,
    wait_for,
    webhook_block,
)


def _register(config, connection_id: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "canonry.cli", "webhooks", "register", "-c", connection_id,
                           "--url", url, "--config", str(config)], capture_output=True, text=True, timeout=120)


def test_register_pipedrive_and_lever_through_their_api_greenhouse_names_the_ui_step(
        data_dir, sandbox_factory, connect_sandbox, tmp_path, monkeypatch):
    set_secret_env(monkeypatch)
    pipedrive = sandbox_factory("pipedrive", scale=10, webhook_user="nobody", webhook_password="wrong")
    lever = sandbox_factory("lever", scale=10)
    greenhouse = sandbox_factory("greenhouse", scale=10)
    connect_sandbox(pipedrive, "pipedrive-acme", webhooks=webhook_block("pipedrive"))
    connect_sandbox(pipedrive, "pipedrive-bare")   # no `webhooks:` block: nothing to register with
    connect_sandbox(lever, "lever-acme", webhooks=webhook_block("lever"))
    connect_sandbox(greenhouse, "greenhouse-acme", webhooks=webhook_block("greenhouse"),
                    auth={"kind": "client_credentials", "secret": "env:CANONRY_TEST_GREENHOUSE_ACME"})
    config = tmp_path / "connections.yml"
    intake = WebhookServer(config).start()
    try:
        registered = _register(config, "pipedrive-acme", intake.hook("pipedrive-acme"))
        assert registered.returncode == 0, registered.stderr
        assert f"registered {intake.hook('pipedrive-acme')} at pipedrive" in registered.stdout
        # The sandbox now delivers there with the basic auth the intake checks (it had wrong credentials).
        assert pipedrive.simulator.webhook_user == PIPEDRIVE_USER
        deleted = mutate(pipedrive, "persons", delete=1, seed=2)["delete"]
        wait_for(lambda: journal_rows(data_dir))

        registered = _register(config, "lever-acme", intake.hook("lever-acme"))
        assert registered.returncode == 0, registered.stderr
        assert registered.stdout.count(",") == 7        # one webhook per interpreted event: 8 ids
        assert "sandbox-lever-webhook-signature-token" not in registered.stdout + registered.stderr
        assert lever.state.webhook_url == intake.hook("lever-acme")

        bare = _register(config, "pipedrive-bare", intake.hook("pipedrive-bare"))
        assert bare.returncode == 1 and "need `webhooks.username` and `webhooks.secret`" in bare.stderr
        assert pipedrive.simulator.webhook_user == PIPEDRIVE_USER     # the first registration stands

        refused = _register(config, "greenhouse-acme", intake.hook("greenhouse-acme"))
        assert refused.returncode == 1
        assert "Dev Center > Web Hooks" in refused.stderr and "nothing was registered" in refused.stderr
        assert greenhouse.state.webhook_url is None
    finally:
        log = intake.stop()
    rows = journal_rows(data_dir)
    assert {r["connection_id"] for r in rows} == {"pipedrive-acme"}, log
    assert any(deleted[0] in r["body"].decode() for r in rows)
