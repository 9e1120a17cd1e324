"""sqlglotc / sqlglotrs must stay uninstalled: compiled sqlglot breaks the SOQL dialect's subclasses."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import pytest
import sqlglot.tokenizer_core
import sqlglot.tokens


@pytest.mark.parametrize("dist", ["sqlglotc", "sqlglotrs"])
def test_compiled_sqlglot_not_installed(dist: str) -> None:
    assert importlib.util.find_spec(dist) is None, (
        f"{dist} is importable: run `pip uninstall -y sqlglotc sqlglotrs` (see stack-notes.md)")
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution(dist)


def test_sqlglot_is_pure_python() -> None:
    # sqlglotc has no module of its own: it overlays .so files onto sqlglot's modules
    assert sqlglot.tokens.SQLGLOTC_INSTALLED is False
    assert sqlglot.tokenizer_core.__file__.endswith(".py")
