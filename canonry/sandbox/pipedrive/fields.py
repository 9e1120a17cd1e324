"""Pipedrive's field definitions: `GET /v1/{personFields,dealFields,organizationFields,activityFields,
noteFields,productFields}` and `PUT /v1/<entity>Fields/{id}` (rename), for the Pipedrive simulator.

Every entity has its system fields (keys such as `name`, `owner_id`) and custom fields, keyed by a
40-character hexadecimal hash (Pipedrive's `key`, e.g. `dcf558aac1ae4e8c4f849ba5e668430d8df9be12`):
the key never changes, the `name` can be renamed. Definitions are always served; records carry custom
field values only when the simulator is started with `custom_fields=True` (values come from their own
random stream, so enabling them shifts no other generated value).

Custom field kinds are Pipedrive's `field_type`s: `varchar` (text), `double` (number), `date`, `enum`
(single option), `set` (multiple options), `monetary` (amount + currency), `user` (a user id). How a
value is rendered differs per API version (`render_v2`, `render_v1`), as in Pipedrive: v2 puts them
under `custom_fields` by key (monetary as `{value, currency}`, options as ids), v1 at the top level of
the body (monetary as a number plus `<key>_currency`, options as comma-separated id strings).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from canonry.sandbox.collection import BASE_EPOCH
from canonry.sandbox.datagen import Faker

# URL path segment -> entity name.
FIELD_ENDPOINTS: dict[str, str] = {
    "personFields": "person", "dealFields": "deal", "organizationFields": "organization",
    "activityFields": "activity", "noteFields": "note", "productFields": "product",
}
# System fields per entity: (key, name, field_type). A subset of Pipedrive's, the ones the sandbox serves.
SYSTEM_FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "person": (("id", "ID", "int"), ("name", "Name", "varchar"), ("first_name", "First name", "varchar"),
               ("last_name", "Last name", "varchar"), ("org_id", "Organization", "org"),
               ("owner_id", "Owner", "user"), ("email", "Email", "varchar"), ("phone", "Phone", "phone"),
               ("label_ids", "Labels", "set"), ("visible_to", "Visible to", "visible_to"),
               ("job_title", "Job title", "varchar"), ("add_time", "Person created", "date"),
               ("update_time", "Update time", "date")),
    "organization": (("id", "ID", "int"), ("name", "Name", "varchar"), ("owner_id", "Owner", "user"),
                     ("address", "Address", "address"), ("label_ids", "Labels", "set"),
                     ("visible_to", "Visible to", "visible_to"), ("website", "Website", "varchar"),
                     ("industry", "Industry", "varchar"), ("employee_count", "Number of employees", "int"),
                     ("add_time", "Organization created", "date"), ("update_time", "Update time", "date")),
    "deal": (("id", "ID", "int"), ("title", "Title", "varchar"), ("user_id", "Owner", "user"),
             ("person_id", "Contact person", "people"), ("org_id", "Organization", "org"),
             ("value", "Value", "monetary"), ("currency", "Currency", "varchar"),
             ("pipeline_id", "Pipeline", "int"), ("stage_id", "Stage", "stage"), ("status", "Status", "status"),
             ("probability", "Probability", "double"), ("lost_reason", "Lost reason", "varchar"),
             ("expected_close_date", "Expected close date", "date"), ("close_time", "Deal closed on", "date"),
             ("won_time", "Won time", "date"), ("lost_time", "Lost time", "date"),
             ("label", "Label", "set"), ("visible_to", "Visible to", "visible_to"),
             ("add_time", "Deal created", "date"), ("update_time", "Update time", "date")),
    "activity": (("id", "ID", "int"), ("subject", "Subject", "varchar"), ("type", "Type", "enum"),
                 ("user_id", "Assigned to user", "user"), ("deal_id", "Deal", "int"),
                 ("person_id", "Contact person", "people"), ("org_id", "Organization", "org"),
                 ("due_date", "Due date", "date"), ("due_time", "Due time", "time"),
                 ("duration", "Duration", "time"), ("done", "Done", "enum"), ("note", "Note", "text"),
                 ("add_time", "Add time", "date"), ("update_time", "Update time", "date")),
    "note": (("id", "ID", "int"), ("content", "Content", "text"), ("user_id", "User", "user"),
             ("deal_id", "Deal", "int"), ("person_id", "Person", "people"), ("org_id", "Organization", "org"),
             ("add_time", "Add time", "date"), ("update_time", "Update time", "date")),
    "product": (("id", "ID", "int"), ("name", "Name", "varchar"), ("code", "Product code", "varchar"),
                ("unit", "Unit", "varchar"), ("tax", "Tax", "double"), ("prices", "Price", "monetary"),
                ("owner_id", "Owner", "user"), ("visible_to", "Visible to", "visible_to"),
                ("add_time", "Add time", "date"), ("update_time", "Update time", "date")),
}
# Custom fields per entity: (name, field_type, options). One of each kind on persons, organizations and
# deals; products have two (a company often has few). Activities and notes have none.
CUSTOM_FIELDS: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "person": (("Preferred language", "varchar", ()), ("Lead score", "double", ()), ("Birthday", "date", ()),
               ("Segment", "enum", ("SMB", "Mid-market", "Enterprise")),
               ("Interests", "set", ("Product", "Pricing", "Support", "Partnerships")),
               ("Lifetime value", "monetary", ()), ("Account manager", "user", ())),
    "organization": (("Tax number", "varchar", ()), ("Annual revenue", "double", ()),
                     ("Customer since", "date", ()), ("Tier", "enum", ("Bronze", "Silver", "Gold")),
                     ("Regions", "set", ("EMEA", "AMER", "APAC")), ("Contract value", "monetary", ()),
                     ("Success manager", "user", ())),
    "deal": (("Campaign code", "varchar", ()), ("Seats", "double", ()), ("Renewal date", "date", ()),
             ("Deal source", "enum", ("Inbound", "Outbound", "Partner", "Event")),
             ("Products of interest", "set", ("Core", "Analytics", "Integrations", "Support plan")),
             ("Discount", "monetary", ()), ("Solution engineer", "user", ())),
    "product": (("SKU family", "varchar", ()), ("Launch date", "date", ())),
}
# Entities whose records (collection name) carry custom field values.
VALUE_COLLECTIONS: dict[str, str] = {"persons": "person", "organizations": "organization", "deals": "deal"}
FIELD_ID_BASE = {"person": 9000, "organization": 4000, "deal": 12000, "activity": 15000, "note": 16000,
                 "product": 17000}
OPTION_ID_BASE = 100
CURRENCIES = ("EUR", "USD", "GBP")


def field_key(entity: str, name: str) -> str:
    """A custom field's 40-character hash key (stable: derived from the name it was created with)."""
    return hashlib.sha1(f"pipedrive:{entity}:{name}".encode()).hexdigest()


class FieldDefinitions:
    """Every entity's field definitions (mutable: custom fields can be renamed)."""

    def __init__(self, seed: int, first_user_id: int, user_count: int) -> None:
        self.first_user_id, self.user_count = first_user_id, user_count
        self.faker = {entity: Faker(seed, f"pipedrive.custom.{entity}") for entity in CUSTOM_FIELDS}
        self.fields: dict[str, list[dict]] = {}
        for entity, system in SYSTEM_FIELDS.items():
            rows = [self._definition(entity, n, key, name, kind, (), custom=False)
                    for n, (key, name, kind) in enumerate(system)]
            for n, (name, kind, options) in enumerate(CUSTOM_FIELDS.get(entity, ()), start=len(system)):
                rows.append(self._definition(entity, n, field_key(entity, name), name, kind, options, custom=True))
            self.fields[entity] = rows

    @staticmethod
    def _definition(entity: str, position: int, key: str, name: str, kind: str, options: tuple[str, ...],
                    custom: bool) -> dict:
        field_id = FIELD_ID_BASE[entity] + position + 1
        created = (BASE_EPOCH - timedelta(days=400 - position)).strftime("%Y-%m-%d %H:%M:%S")
        body = {
            "id": field_id, "key": key, "name": name, "order_nr": position, "field_type": kind,
            "add_time": created, "update_time": created, "last_updated_by_user_id": None,
            "created_by_user_id": None, "active_flag": True, "edit_flag": custom, "is_subfield": False,
            "index_visible_flag": True, "details_visible_flag": True, "add_visible_flag": custom or key == "name",
            "important_flag": False, "bulk_edit_allowed": True, "searchable_flag": kind == "varchar",
            "filtering_allowed": True, "sortable_flag": True, "mandatory_flag": key in ("name", "title"),
        }
        if options:
            body["options"] = [{"id": field_id * OPTION_ID_BASE + n, "label": label}
                               for n, label in enumerate(options)]
        return body

    def custom(self, entity: str) -> list[dict]:
        return [f for f in self.fields.get(entity, []) if f["edit_flag"]]

    def rename(self, entity: str, field_id: int, name: str, now: datetime) -> dict | None:
        for definition in self.fields.get(entity, []):
            if definition["id"] == field_id:
                definition["name"] = name
                definition["update_time"] = now.strftime("%Y-%m-%d %H:%M:%S")
                return definition
        return None

    # -- values -----------------------------------------------------------------------------------
    def values(self, entity: str, index: int) -> dict:
        """Stored (v2-shaped) custom field values of record `index`: {key: value}; about a fifth empty."""
        fake = self.faker[entity]
        out: dict = {}
        for definition in self.custom(entity):
            key, kind = definition["key"], definition["field_type"]
            if fake.chance(index, key + "?", 20):
                out[key] = None
                continue
            options = [o["id"] for o in definition.get("options", [])]
            if kind == "varchar":
                out[key] = fake.words(index, key, 2).title()
            elif kind == "double":
                out[key] = fake.number(index, key, 100_000) / 100
            elif kind == "date":
                out[key] = f"202{fake.number(index, key + 'y', 6)}-{fake.number(index, key + 'm', 12) + 1:02d}-" \
                           f"{fake.number(index, key + 'd', 28) + 1:02d}"
            elif kind == "enum":
                out[key] = fake.pick(index, key, tuple(options))
            elif kind == "set":
                out[key] = [o for n, o in enumerate(options) if fake.chance(index, f"{key}{n}", 40)] or options[:1]
            elif kind == "monetary":
                out[key] = {"value": fake.number(index, key, 5_000_000) / 100,
                            "currency": fake.pick(index, key + "c", CURRENCIES)}
            elif kind == "user":
                out[key] = self.first_user_id + fake.number(index, key, self.user_count)
        return out

    def render_v1(self, entity: str, values: dict) -> dict:
        """API v1 shape of stored values: top-level keys; monetary splits into `<key>` and `<key>_currency`;
        enum and set values are option ids as strings (sets comma-separated), as v1 answers them."""
        kinds = {d["key"]: d["field_type"] for d in self.custom(entity)}
        out: dict = {}
        for key, value in values.items():
            kind = kinds.get(key)
            if kind == "monetary" and isinstance(value, dict):
                out[key], out[f"{key}_currency"] = value.get("value"), value.get("currency")
            elif kind == "set" and isinstance(value, list):
                out[key] = ",".join(str(v) for v in value)
            elif kind == "enum" and value is not None:
                out[key] = str(value)
            else:
                out[key] = value
        return out
