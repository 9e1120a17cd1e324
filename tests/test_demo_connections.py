"""The demo's connections file is assembled from each provider's own `canonry/sandbox/<slug>/demo-connection.yml`:
one valid connections file, one connection per provider of the registry, distinct placeholder ports, comments kept;
a provider's file that is not one connection is an error naming it."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from canonry.config import parse_file
from canonry.demo_connections import FILE_NAME, demo_connections_text, write_demo_connections
from canonry.providers import slugs


def test_the_assembled_file_is_valid_and_holds_every_provider_once(tmp_path):
    path = write_demo_connections(tmp_path)
    model, problems, _, _ = parse_file(path)
    assert problems == [] and model is not None
    assert sorted(c.provider for c in model.connections) == sorted(slugs())
    ports = [urlsplit(c.base_url).port for c in model.connections]
    assert ports == sorted(ports) and len(set(ports)) == len(ports)
    text = path.read_text()
    assert "# Reverse ETL: the demo pushes the shipped sync" in text          # a provider file's own comment
    assert "# The demo's HubSpot connection" not in text                      # its header block is not
    assert write_demo_connections(tmp_path).stat().st_mtime_ns == path.stat().st_mtime_ns   # unchanged: not rewritten


def test_a_provider_file_that_is_not_one_connection_is_an_error_naming_it(tmp_path):
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / FILE_NAME).write_text("# header\n\n- id: a\n- id: b\n")
    with pytest.raises(ValueError, match=r"acme/demo-connection.yml: a demo connection file holds one connection"):
        demo_connections_text(tmp_path)
