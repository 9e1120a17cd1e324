"""Salesforce custom fields for the simulator (option `custom_fields=True`): `__c` fields of every kind on
Account, Contact and Opportunity, listed by `/sobjects/<Object>/describe` (`custom: true`) with the standard
fields, queryable by SOQL, and carried as top-level keys of records, as Salesforce does. Values come from
their own random stream (canonry.sandbox.custom_values): enabling them moves no other generated value.

The API name (`Region__c`) is the field's key; its label can be changed (Setup, or the Tooling API's
`CustomField`), which the control endpoint `POST /_sandbox/salesforce/custom_fields {object, name, label}`
stands for. Kinds as Salesforce types them: string, double, date, picklist (one value), multipicklist
(values joined by `;`), currency (a number in the record's currency) and a lookup to User (`reference`).
"""

from __future__ import annotations

from dataclasses import replace

from canonry.sandbox.custom_values import custom_value
from canonry.sandbox.datagen import Faker
from canonry.sandbox.salesforce.objects import SfField, make_id

# object -> (API name, label, kind, picklist values); kind as canonry.sandbox.custom_values.KINDS
CUSTOM_FIELDS: dict[str, tuple[tuple[str, str, str, tuple[str, ...]], ...]] = {
    "Account": (("Tax_Number__c", "Tax number", "text", ()),
                ("Seats_Licensed__c", "Seats licensed", "number", ()),
                ("Customer_Since__c", "Customer since", "date", ()),
                ("Tier__c", "Tier", "enum", ("Bronze", "Silver", "Gold")),
                ("Regions__c", "Regions", "multi_select", ("EMEA", "AMER", "APAC")),
                ("Contract_Value__c", "Contract value", "currency", ()),
                ("Success_Manager__c", "Success manager", "user", ())),
    "Contact": (("Preferred_Language__c", "Preferred language", "text", ()),
                ("Manual_Score__c", "Manual score", "number", ()),
                ("Birthday__c", "Birthday", "date", ()),
                ("Segment__c", "Segment", "enum", ("SMB", "Mid-market", "Enterprise")),
                ("Interests__c", "Interests", "multi_select", ("Product", "Pricing", "Support")),
                ("Lifetime_Value__c", "Lifetime value", "currency", ()),
                ("Account_Manager__c", "Account manager", "user", ())),
    "Opportunity": (("Campaign_Code__c", "Campaign code", "text", ()),
                    ("Seats__c", "Seats", "number", ()),
                    ("Renewal_Date__c", "Renewal date", "date", ()),
                    ("Deal_Source__c", "Deal source", "enum", ("Inbound", "Outbound", "Partner")),
                    ("Products__c", "Products", "multi_select", ("Core", "Analytics", "Integrations")),
                    ("Discount__c", "Discount", "currency", ()),
                    ("Solution_Engineer__c", "Solution engineer", "user", ())),
}
SF_TYPES = {"text": "string", "number": "double", "date": "date", "enum": "picklist",
            "multi_select": "multipicklist", "currency": "currency", "user": "reference"}


def _field(name: str, label: str, kind: str, options: tuple[str, ...]) -> SfField:
    if kind == "user":
        return SfField(name, "reference", label=label, reference_to=("User",), relationship_name=name[:-1] + "r",
                       length=18)
    return SfField(name, SF_TYPES[kind], label=label, picklist=options,
                   length={"text": 255, "enum": 255, "multi_select": 4099}.get(kind, 0))


class CustomFields:
    """The custom fields' definitions (labels can change) and generated values."""

    def __init__(self, seed: int, users: int) -> None:
        self.users = users
        self.fake = {name: Faker(seed, f"salesforce.custom.{name}") for name in CUSTOM_FIELDS}
        self.fields: dict[str, list[SfField]] = {
            name: [_field(*spec) for spec in specs] for name, specs in CUSTOM_FIELDS.items()}
        self.kinds = {(name, spec[0]): (spec[2], spec[3]) for name, specs in CUSTOM_FIELDS.items() for spec in specs}

    def relabel(self, object_name: str, name: str, label: str) -> SfField | None:
        for n, field in enumerate(self.fields.get(object_name, [])):
            if field.name == name:
                self.fields[object_name][n] = replace(field, label=label)
                return self.fields[object_name][n]
        return None

    def values(self, object_name: str, index: int) -> dict[str, object]:
        """Record `index`'s custom field values as Salesforce sends them."""
        out: dict[str, object] = {}
        for field in self.fields.get(object_name, []):
            kind, options = self.kinds[(object_name, field.name)]
            value = custom_value(self.fake[object_name], index, field.name, kind, options, self.users)
            if value is None:
                out[field.name] = None
            elif kind == "multi_select":
                out[field.name] = ";".join(value)
            elif kind == "user":
                out[field.name] = make_id("User", value)
            else:
                out[field.name] = value
        return out
