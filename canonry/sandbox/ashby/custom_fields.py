"""Ashby custom fields for the simulator (option `custom_fields=True`): definitions of Ashby's field types on
`POST /customField.list` and values in the `customFields` arrays of candidates, applications and jobs
(`[{id, title, value}]`, the title as it is now). Values come from their own random stream
(canonry.sandbox.custom_values): enabling them moves no other generated value.

Field types and value shapes as `customField.setValue` documents them: String (a string), Number (a number),
Date (an ISO date), ValueSelect (the `value` of one of the field's `selectableValues`), MultiValueSelect (a
list of such values), CompensationRange (`{type: "compensation-range", minValue, maxValue, currencyCode,
interval}`), Boolean. Ashby has no user-reference custom field type. A field's `id` is its stable key; its
`title` can be changed (`POST /_sandbox/ashby/custom_fields {id, title}` stands for the admin screen).
"""

from __future__ import annotations

import uuid

from canonry.sandbox.custom_values import custom_value
from canonry.sandbox.datagen import Faker

# objectType -> (title, fieldType, option labels); the candidates' "Notice period" predates the option
# (every candidate carries it, id `cf-notice`) and is defined here as the String it is.
CUSTOM_FIELDS: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "Candidate": (("Preferred language", "String", ()), ("Years of experience", "Number", ()),
                  ("Available from", "Date", ()), ("Seniority", "ValueSelect", ("Junior", "Mid-level", "Senior")),
                  ("Languages", "MultiValueSelect", ("English", "German", "French")),
                  ("Salary expectation", "CompensationRange", ()), ("Open to relocation", "Boolean", ())),
    "Application": (("Referral code", "String", ()), ("Assessment score", "Number", ()),
                    ("Notice date", "Date", ()), ("Priority", "ValueSelect", ("Low", "Medium", "High")),
                    ("Channels", "MultiValueSelect", ("Email", "Event", "Job board")),
                    ("Offer range", "CompensationRange", ()), ("Fast track", "Boolean", ())),
    "Job": (("Cost center", "String", ()), ("Headcount", "Number", ()), ("Target start", "Date", ()),
            ("Work model", "ValueSelect", ("Remote", "Hybrid", "On-site")),
            ("Skills", "MultiValueSelect", ("Python", "SQL", "Go")),
            ("Budget", "CompensationRange", ()), ("Evergreen", "Boolean", ())),
}
RESOURCE_OBJECT_TYPE = {"candidates": "Candidate", "applications": "Application", "jobs": "Job"}
KIND = {"String": "text", "Number": "number", "Date": "date", "ValueSelect": "enum",
        "MultiValueSelect": "multi_select", "CompensationRange": "currency", "Boolean": "enum"}
NOTICE = {"id": "cf-notice", "isPrivate": False, "title": "Notice period", "objectType": "Candidate",
          "isArchived": False, "fieldType": "String", "selectableValues": []}
CURRENCIES = ("USD", "EUR", "GBP")
INTERVALS = ("1 YEAR", "1 MONTH", "1 HOUR")


def option_value(label: str) -> str:
    """Ashby option values are their own strings; here a slug, so decoding to the label is exercised."""
    return label.lower().replace(" ", "-")


class AshbyCustomFields:
    """Definitions (titles can change) and generated values of the simulator's custom fields."""

    def __init__(self, seed: int) -> None:
        self.fake = {t: Faker(seed, f"ashby.custom.{t}") for t in CUSTOM_FIELDS}
        self.definitions: list[dict] = [dict(NOTICE)] + [
            {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"ashby-custom-field/{object_type}/{title}")),
             "isPrivate": False, "title": title, "objectType": object_type, "isArchived": False,
             "fieldType": field_type,
             "selectableValues": [{"label": o, "value": option_value(o), "isArchived": False} for o in options]}
            for object_type, specs in CUSTOM_FIELDS.items() for title, field_type, options in specs]
        self.by_id = {d["id"]: d for d in self.definitions}

    def retitle(self, field_id: str, title: str) -> dict | None:
        definition = self.by_id.get(field_id)
        if definition is not None:
            definition["title"] = title
        return definition

    def values(self, resource: str, index: int, existing: list[dict]) -> list[dict]:
        """Record `index`'s `customFields` (fields with an empty value are left out, as Ashby does)."""
        object_type = RESOURCE_OBJECT_TYPE[resource]
        fake = self.fake[object_type]
        out = list(existing)
        for d in self.definitions:
            if d["objectType"] != object_type or d["id"] == NOTICE["id"]:
                continue
            options = tuple(o["value"] for o in d["selectableValues"]) or ("true", "false")
            value = custom_value(fake, index, d["id"], KIND[d["fieldType"]], options)
            if value is None:
                continue
            if d["fieldType"] == "CompensationRange":
                value = {"type": "compensation-range", "minValue": value, "maxValue": round(value * 1.2, 2),
                         "currencyCode": fake.pick(index, d["id"] + "$", CURRENCIES),
                         "interval": fake.pick(index, d["id"] + "/", INTERVALS)}
            elif d["fieldType"] == "Boolean":
                value = value == "true"
            out.append({"id": d["id"], "title": d["title"], "value": value})
        return out

    def retitled(self, fields: list[dict]) -> list[dict]:
        return [{**f, "title": self.by_id[f["id"]]["title"]} if f.get("id") in self.by_id else f for f in fields]
