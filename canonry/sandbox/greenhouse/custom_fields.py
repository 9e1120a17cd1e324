"""Greenhouse custom fields for the simulator (option `custom_fields=True`): definitions of every value type on
`GET /v3/custom_fields` (v3 replaces v1's `/v1/custom_fields/{field_type}` with a `field_type` filter), and
values on candidates, applications and jobs as `custom_fields {name_key: value}` with
`keyed_custom_fields {name_key: {name, type, value}}`. Values come from their own random stream
(canonry.sandbox.custom_values): enabling them moves no other generated value.

A field's `name_key` is its stable identifier (the v3 reference: "name_key is stable across rename"); its
`name` can be changed (`POST /_sandbox/greenhouse/custom_fields {field_type, name_key, name}` stands for the
admin screen). Value shapes: text, number, date (`YYYY-MM-DD`), single_select (the option's name),
multi_select (the options' names), currency `{amount, unit}`, user `{user_id, name}`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from canonry.sandbox.custom_values import custom_value
from canonry.sandbox.datagen import Faker

# field_type -> (name_key, name, value_type, options); the candidates' `desired_salary` predates the option
# (every candidate carries it) and is defined here as the short text it is.
CUSTOM_FIELDS: dict[str, tuple[tuple[str, str, str, tuple[str, ...]], ...]] = {
    "candidate": (("desired_salary", "Desired salary", "short_text", ()),
                  ("preferred_language", "Preferred language", "short_text", ()),
                  ("years_of_experience", "Years of experience", "number", ()),
                  ("available_from", "Available from", "date", ()),
                  ("work_authorization", "Work authorization", "single_select", ("Citizen", "Visa", "Sponsorship")),
                  ("languages", "Languages", "multi_select", ("English", "German", "French", "Spanish")),
                  ("current_salary", "Current salary", "currency", ()),
                  ("talent_partner", "Talent partner", "user", ())),
    "application": (("referral_code", "Referral code", "short_text", ()),
                    ("assessment_score", "Assessment score", "number", ()),
                    ("notice_date", "Notice date", "date", ()),
                    ("priority", "Priority", "single_select", ("Low", "Medium", "High")),
                    ("channels", "Channels", "multi_select", ("Email", "Event", "Job board")),
                    ("expected_salary", "Expected salary", "currency", ()),
                    ("reviewer", "Reviewer", "user", ())),
    "job": (("cost_center", "Cost center", "short_text", ()),
            ("headcount", "Headcount", "number", ()),
            ("target_start", "Target start", "date", ()),
            ("employment_type", "Employment type", "single_select", ("Full-time", "Part-time", "Contract")),
            ("skills", "Skills", "multi_select", ("Python", "SQL", "Go", "React")),
            ("budget", "Budget", "currency", ()),
            ("hiring_sponsor", "Hiring sponsor", "user", ())),
}
RESOURCE_FIELD_TYPE = {"candidates": "candidate", "applications": "application", "jobs": "job"}
KIND = {"short_text": "text", "number": "number", "date": "date", "single_select": "enum",
        "multi_select": "multi_select", "currency": "currency", "user": "user"}
FIRST_ID = 4_000_000
CREATED = "2024-03-01T09:00:00.000Z"
CURRENCIES = ("USD", "EUR", "GBP")


class GreenhouseCustomFields:
    """Definitions (names can change) and generated values of the simulator's custom fields."""

    def __init__(self, seed: int, users: int, user_id, user_name) -> None:
        self.users, self.user_id, self.user_name = users, user_id, user_name
        self.fake = {t: Faker(seed, f"greenhouse.custom.{t}") for t in CUSTOM_FIELDS}
        serial = iter(range(FIRST_ID, FIRST_ID + 1000))
        self.definitions: list[dict] = [
            {"id": next(serial), "name": name, "active": True, "field_type": field_type, "priority": n,
             "value_type": value_type, "private": False, "required": False, "require_approval": False,
             "trigger_new_version": False, "name_key": key, "description": None, "expose_in_job_board_api": False,
             "api_only": False, "created_at": CREATED, "updated_at": CREATED, "_options": options}
            for field_type, specs in CUSTOM_FIELDS.items() for n, (key, name, value_type, options) in enumerate(specs)]

    def listed(self, field_type: str | None) -> list[dict]:
        return [{k: v for k, v in d.items() if not k.startswith("_")} for d in self.definitions
                if field_type in (None, d["field_type"])]

    def rename(self, field_type: str, name_key: str, name: str) -> dict | None:
        for definition in self.definitions:
            if (definition["field_type"], definition["name_key"]) == (field_type, name_key):
                definition["name"] = name
                definition["updated_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
                return {k: v for k, v in definition.items() if not k.startswith("_")}
        return None

    def values(self, resource: str, index: int, existing: dict | None = None) -> dict[str, object]:
        """Record `index`'s `custom_fields` ({name_key: value}, empty values null), `existing` kept."""
        field_type = RESOURCE_FIELD_TYPE[resource]
        out: dict[str, object] = dict(existing or {})
        for d in self.definitions:
            if d["field_type"] != field_type or d["name_key"] in out:
                continue
            kind = KIND[d["value_type"]]
            value = custom_value(self.fake[field_type], index, d["name_key"], kind, d["_options"], self.users)
            if value is not None and kind == "currency":
                value = {"amount": f"{value:.2f}",
                         "unit": self.fake[field_type].pick(index, d["name_key"] + "$", CURRENCIES)}
            elif value is not None and kind == "user":
                value = {"user_id": self.user_id(value), "name": self.user_name(value)}
            out[d["name_key"]] = value
        return out

    def keyed(self, resource: str, values: dict) -> dict[str, dict]:
        """`keyed_custom_fields`: every defined field of the record's type with its current name and type."""
        field_type = RESOURCE_FIELD_TYPE[resource]
        return {d["name_key"]: {"name": d["name"], "type": d["value_type"], "value": values.get(d["name_key"])}
                for d in self.definitions if d["field_type"] == field_type}
