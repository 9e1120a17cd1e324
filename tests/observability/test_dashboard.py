"""The health page in a real browser: Debian's headless Chromium driven by Playwright (no browser download)
loads the page `canonry dashboard` wrote, at a phone's width: no console error, the connection rows and the
open alert visible, nothing wider than the screen; a screenshot is kept in the test's tmp dir."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta

import pytest
import requests
from typer.testing import CliRunner

from canonry import ops
from canonry.alerting import evaluate
from canonry.alerting.rules import AlertsFile
from canonry.cli import app
from canonry.dashboard import app as health_app
from tests.observability.servers import serve

runner = CliRunner()
CHROMIUM = os.environ.get("CANONRY_CHROMIUM", "/usr/bin/chromium")


def _browser_or_skip() -> str:
    if shutil.which(CHROMIUM) or os.path.exists(CHROMIUM):
        return CHROMIUM
    message = f"no Chromium at {CHROMIUM}: `make browser` (Debian's chromium package) installs it"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)  # under CI this test must run
    pytest.skip(message)


def _run(run_id, connection, provider, status, finished, calls, records, error_class=None) -> dict:
    return {"run_id": run_id, "connection_id": connection, "provider": provider, "status": status,
            "started_at": finished - timedelta(minutes=1), "finished_at": finished, "calls": calls,
            "records": records, "error_class": error_class, "error_classes": [error_class] if error_class else []}


def _history() -> None:
    now = datetime.now(UTC)
    ops.append("connections", [
        {"connection_id": "hubspot-acme", "tenant_id": "acme", "provider": "hubspot", "updated_at": now,
         "created_at": now - timedelta(days=1)},
        {"connection_id": "salesforce-globex-long-connection-name", "tenant_id": "globex",
         "provider": "salesforce", "updated_at": now, "created_at": now - timedelta(days=1)}])
    ops.append("sync_runs", [
        *[_run(f"h{i}", "hubspot-acme", "hubspot", "success", now - timedelta(minutes=49 - i * 10), 10 + i * 3,
               {"contacts": 100 + i * 20}) for i in range(4)],
        _run("s1", "salesforce-globex-long-connection-name", "salesforce", "success", now - timedelta(hours=9), 40,
             {"Contact": 500}),
        _run("s2", "salesforce-globex-long-connection-name", "salesforce", "failed", now - timedelta(hours=1), 1,
             {}, "auth_expired")])
    ops.append("canary_runs", [{"run_id": "c1", "connection_id": "hubspot-acme", "provider": "hubspot",
                                "probed_at": now - timedelta(minutes=3), "ok": True, "status": 200,
                                "latency_ms": 42.0}])
    ops.set_connection_state("salesforce-globex-long-connection-name", "needs_reauth",
                             "the refresh token was revoked", "auth_expired")
    evaluate(AlertsFile.model_validate({"rules": [{"id": "reauth", "kind": "needs_reauth", "severity": "page"}]}),
             schedules={}, send=False)


def test_health_page_in_headless_chromium_at_phone_width(data_dir, tmp_path):
    chromium = _browser_or_skip()
    from playwright.sync_api import sync_playwright

    _history()
    page_file = tmp_path / "health.html"
    result = runner.invoke(app, ["dashboard", "--out", str(page_file)])
    assert result.exit_code == 0, result.output
    text = page_file.read_text()
    assert "<script" not in text and "http://" not in text and "https://" not in text  # self-contained

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_file.as_uri())
            rows = page.locator(".connection")
            assert rows.count() == 2
            for i in range(2):
                assert rows.nth(i).is_visible()
            alert = page.locator('.alert[data-rule="reauth"]')
            assert alert.is_visible() and "salesforce-globex-long-connection-name" in alert.inner_text()
            assert "runbook: auth_expired" in alert.inner_text()
            stale = page.locator('[data-connection="salesforce-globex-long-connection-name"]')
            assert "STALE" in stale.inner_text() and "needs_reauth" in stale.inner_text()
            assert stale.locator("a.runbook").inner_text() == "runbook: auth_expired"
            hubspot = page.locator('[data-connection="hubspot-acme"]').inner_text()
            assert "within SLO" in hubspot and "ok 42 ms" in hubspot
            assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
            page.screenshot(path=str(tmp_path / "health-phone.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert (tmp_path / "health-phone.png").stat().st_size > 10_000


def test_served_page_runbooks_and_metrics(data_dir):
    _history()
    with serve(health_app()) as base_url:
        page = requests.get(base_url + "/", timeout=30)
        assert page.status_code == 200 and 'href="/runbooks/auth_expired.md"' in page.text
        book = requests.get(base_url + "/runbooks/auth_expired.md", timeout=30)
        assert book.status_code == 200 and book.text.startswith("# `auth_expired`")
        assert requests.get(base_url + "/runbooks/..%2Fsecrets.md", timeout=30).status_code == 404
        assert "canonry_open_incidents" in requests.get(base_url + "/metrics", timeout=30).text
