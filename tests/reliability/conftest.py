"""Reliability suites share one dbt target directory, so dbt's partial parse is reused across tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def shared_dbt_target(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path_factory.getbasetemp() / "dbt_target_shared"
    monkeypatch.setenv("CANONRY_DBT_TARGET_PATH", str(root))
