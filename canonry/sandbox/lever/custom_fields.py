"""Lever custom questions for the simulator (option `custom_fields=True`): every posting application carries
`customQuestions`, Lever's forms of custom questions (`[{id, type: "form", text, baseTemplateId, fields[{id,
type, text, description, required, options[{text}], value}], completedAt}]`), inline in the opportunity when
listed with `expand=applications`. Lever forms describe themselves: each field carries its type, text and
options with its value, so no separate definition call is needed to read them. Values come from their own
random stream (canonry.sandbox.custom_values): enabling them moves no other generated value.

Field types and values: text / textarea (a string), date (epoch milliseconds), dropdown and
multiple-choice (the option's text), multiple-select (the options' texts), currency (`{currency, value}`),
yes-no (`yes` / `no`). Lever has no number or user-reference question. A field's `id` is stable; its text
can be edited (`POST /_sandbox/lever/custom_fields {id, text}` stands for the form editor).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from canonry.sandbox.custom_values import custom_value
from canonry.sandbox.datagen import Faker

TEMPLATE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "lever-custom-questions/template"))
# (text, Lever type, kind as canonry.sandbox.custom_values.KINDS, options)
QUESTIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("Current employer", "text", "text", ()),
    ("Why this role?", "textarea", "text", ()),
    ("Earliest start date", "date", "date", ()),
    ("Work authorization", "dropdown", "enum", ("Citizen", "Visa holder", "Needs sponsorship")),
    ("Preferred office", "multiple-choice", "enum", ("Berlin", "London", "Remote")),
    ("Programming languages", "multiple-select", "multi_select", ("Python", "Go", "TypeScript", "SQL")),
    ("Salary expectation", "currency", "currency", ()),
    ("Open to relocation", "yes-no", "enum", ("yes", "no")),
)
CURRENCIES = ("USD", "EUR", "GBP")


class LeverCustomQuestions:
    """The custom questions form (texts can change) and each application's generated answers."""

    def __init__(self, seed: int) -> None:
        self.fake = Faker(seed, "lever.custom")
        self.fields = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lever-custom-questions/{text}")), "type": kind_type,
                        "text": text, "description": "", "required": False,
                        "options": [{"text": o} for o in options] if kind_type != "yes-no" else [],
                        "_kind": kind, "_options": options}
                       for text, kind_type, kind, options in QUESTIONS]

    def retext(self, field_id: str, text: str) -> dict | None:
        for field in self.fields:
            if field["id"] == field_id:
                field["text"] = text
                return {k: v for k, v in field.items() if not k.startswith("_")}
        return None

    def forms(self, index: int, application_id: str, created_ms: int | None) -> list[dict]:
        """Application `index`'s customQuestions: one completed form (unanswered fields have a null value)."""
        answered = []
        for field in self.fields:
            value = custom_value(self.fake, index, field["id"], field["_kind"], field["_options"])
            if value is not None and field["type"] == "date":
                day = datetime.fromisoformat(value).replace(tzinfo=UTC)
                value = int(day.timestamp() * 1000)
            elif value is not None and field["type"] == "currency":
                value = {"currency": self.fake.pick(index, field["id"] + "$", CURRENCIES), "value": value}
            answered.append({**{k: v for k, v in field.items() if not k.startswith("_")}, "value": value})
        return [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lever-custom-questions/{application_id}")),
                 "type": "form", "text": "Application questions", "instructions": "", "baseTemplateId": TEMPLATE_ID,
                 "fields": answered, "completedAt": created_ms, "createdAt": created_ms, "user": None}]
