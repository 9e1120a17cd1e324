"""Generated custom-field values shared by the simulators: one value per (record, field) as a pure function of
the seed, by canonical kind (text, number, date, enum, multi_select, currency, user). Each simulator renders
the value in its provider's own shape (a Salesforce picklist string, a Greenhouse option name, an Ashby
`{currencyCode, value}`…); this module only decides *which* value, so every simulator's truth is reproducible.
"""

from __future__ import annotations

from canonry.sandbox.datagen import Faker

KINDS = ("text", "number", "date", "enum", "multi_select", "currency", "user")
EMPTY_PERCENT = 20   # about a fifth of the values are left empty, as in real portals


def custom_value(fake: Faker, index: int, key: str, kind: str, options: tuple[str, ...] = (),
                 users: int = 1) -> object | None:
    """Record `index`'s value of custom field `key`: None (empty), str (text, date `YYYY-MM-DD`, enum option),
    float (number, currency), list[str] (multi_select options, at least one) or int (user: an index below
    `users`)."""
    if fake.chance(index, key + "?", EMPTY_PERCENT):
        return None
    if kind == "text":
        return fake.words(index, key, 2).title()
    if kind in ("number", "currency"):
        return fake.number(index, key, 100_000) / 100
    if kind == "date":
        return f"202{fake.number(index, key + 'y', 6)}-{fake.number(index, key + 'm', 12) + 1:02d}-" \
               f"{fake.number(index, key + 'd', 28) + 1:02d}"
    if kind == "enum":
        return fake.pick(index, key, options)
    if kind == "multi_select":
        return [o for n, o in enumerate(options) if fake.chance(index, f"{key}{n}", 40)] or [options[0]]
    if kind == "user":
        return fake.number(index, key, max(1, users))
    raise ValueError(f"unknown custom field kind {kind!r} (one of {', '.join(KINDS)})")
