"""Classification: every canonical column has a class and an owner, and every consumer of the contract shows
them (dbt meta and the column comment, the OpenAPI document); raw personal fields are listed per provider."""

from __future__ import annotations

import importlib

import pytest
import yaml

from canonry import canonical, dbt_yml
from canonry.api.openapi import document
from canonry.api.resources import RESOURCES
from canonry.providers import slugs


def test_every_column_is_classified_everywhere():
    properties = {m["name"]: m for m in yaml.safe_load(dbt_yml.CANONICAL_YML.read_text())["models"]}
    schemas = document()["components"]["schemas"]
    for resource in RESOURCES:
        api = schemas[resource.schema_name]["properties"]
        dbt_columns = {c["name"]: c for c in properties[resource.table]["columns"]}
        for column in canonical.columns(resource.table):
            doc = canonical.column_doc(resource.table, column)
            assert doc.classification in canonical.CLASSIFICATIONS and doc.owner
            assert dbt_columns[column]["config"]["meta"] == {"classification": doc.classification, "owner": doc.owner}
            assert dbt_columns[column]["description"].endswith(f"[class: {doc.classification}; owner: {doc.owner}]")
            assert (api[column]["x-classification"], api[column]["x-owner"]) == (doc.classification, doc.owner)


def test_a_column_without_a_class_fails(monkeypatch):
    monkeypatch.setitem(canonical.COLUMN_DOCS, "first_name", ("text", "", "Given name."))
    with pytest.raises(KeyError, match="ats_candidates.first_name has class ''"):
        dbt_yml.render()
    with pytest.raises(KeyError, match="has class ''"):
        document()


@pytest.mark.parametrize("provider", sorted(slugs()))
def test_personal_fields_are_listed_per_provider(provider):
    settings = importlib.import_module(f"sources.{provider}.settings")
    fields = settings.PERSONAL_FIELDS
    assert fields and all(isinstance(names, tuple) and names for names in fields.values())
    # Every person table the provider feeds has its raw table listed (users at least, and its people).
    assert {"users", "owners", "members"} & set(fields)   # what the provider calls the people using it
    assert {"candidates", "opportunities", "contacts", "persons"} & set(fields)
