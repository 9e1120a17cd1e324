"""docs/openapi.json is what the contract generates today (refresh: `canonry api openapi --write`)."""

from __future__ import annotations

import subprocess
import sys

from canonry.api.openapi import DOCUMENT_PATH, document, rendered
from canonry.api.resources import RESOURCES
from canonry.canonical import ENUMS, TABLES, columns


def test_committed_document_is_current():
    assert DOCUMENT_PATH.read_text() == rendered(), "run `canonry api openapi --write` and commit docs/openapi.json"
    check = subprocess.run([sys.executable, "-m", "canonry.cli", "api", "openapi", "--check"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def test_every_canonical_table_and_column_is_a_resource_and_a_property():
    doc = document()
    assert doc["openapi"].startswith("3.1")
    assert {r.table for r in RESOURCES} == set(TABLES)
    for resource in RESOURCES:
        assert {f"{resource.path}", f"{resource.path}/{{id}}"} <= set(doc["paths"])
        properties = doc["components"]["schemas"][resource.schema_name]["properties"]
        assert list(properties) == list(columns(resource.table))
        for (table, column), values in ENUMS.items():
            if table == resource.table:
                assert properties[column]["enum"] == [*values, None]
