"""What each provider object feeds (`ProviderObject.feeds`, read by `canonry validate`'s objects_incomplete
check) stays true to the dbt project: an object feeds only canonical tables its raw table reaches in the dbt
lineage, and every canonical table a provider declares is fed by at least one of its objects."""

from __future__ import annotations

from canonry import providers
from canonry.canonical import FOREIGN_KEYS, TABLES
from canonry.transform import parse
from expectations.gate import raw_objects_feeding


def test_every_object_feeds_only_tables_its_raw_table_reaches_in_the_dbt_lineage(data_dir):
    parsed = parse()
    assert parsed.success, parsed.error
    upstream = raw_objects_feeding()
    wrong = [f"{slug}.{obj.name} feeds {table}, whose int_{slug}__{table} reads {sorted(upstream.get((slug, table), ()))}"
             for slug in providers.slugs() for obj in providers.spec(slug).objects for table in obj.feeds
             if obj.name not in upstream.get((slug, table), set())]
    assert not wrong, wrong


def test_every_canonical_table_of_a_provider_is_fed_by_one_of_its_objects():
    unfed = [f"{slug}: {table}" for slug in providers.slugs() for table in providers.spec(slug).canonical_tables
             if not providers.spec(slug).objects_feeding(table)]
    assert not unfed, unfed


def test_foreign_keys_name_canonical_tables():
    # The objects_incomplete check reads FOREIGN_KEYS by table name: a renamed table must not silently pass.
    for key, referenced in FOREIGN_KEYS.items():
        assert key.split(".")[0] in TABLES and referenced in TABLES, key
