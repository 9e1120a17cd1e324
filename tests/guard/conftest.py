"""Guard test fixtures: every test gets its own warehouse and no AI endpoint unless it sets one."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_guard_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("CANONRY_DATA_DIR", str(data))
    monkeypatch.setenv("CANONRY_WAREHOUSE", str(data / "warehouse.duckdb"))
    # These warehouses are hand-made canonical tables (no build, so no canonical_masked views): the guard's
    # own rules are tested on canonical itself; the masked default is tested in tests/governance/.
    monkeypatch.setenv("CANONRY_QUERY_POLICY", "unmasked")
    for name in ("CANONRY_LLM_URL", "CANONRY_LLM_MODEL", "CANONRY_LLM_API_KEY", "CANONRY_SF_CATALOG"):
        monkeypatch.delenv(name, raising=False)
    return data
