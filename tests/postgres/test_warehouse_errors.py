"""A warehouse URL that cannot take effect is one clear config_error through the CLI, password redacted."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from canonry.cli import app

runner = CliRunner()


@pytest.mark.parametrize("url, expected", [
    ("mysql://someone:hunter2hunter2@127.0.0.1/db", "unsupported warehouse URL scheme"),
])
def test_a_warehouse_url_that_cannot_take_effect_is_a_config_error(data_dir, monkeypatch, url, expected):
    monkeypatch.setenv("CANONRY_WAREHOUSE", url)
    result = runner.invoke(app, ["status"])
    assert result.exit_code != 0
    assert "[config_error]" in result.output and expected in result.output
    assert "hunter2hunter2" not in result.output and "***" in result.output
    assert not (data_dir / "warehouse.duckdb").exists()
