"""Deterministic fake data: every value is a pure function of (seed, object, index, field).

A splitmix64-style hash picks values from small vocabularies, so generating record i never depends on
records before it (random access, constant memory, identical output for the same seed).
"""

from __future__ import annotations

import hashlib

FIRST_NAMES = (
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis",
    "Radia", "Tim", "Katherine", "Linus", "Hedy", "John", "Sophie", "Guido", "Anita", "Bjarne",
    "Jean", "Niklaus", "Karen", "Leslie", "Shafi", "Vint", "Yukihiro", "Evelyn", "Claude", "Mary",
)
LAST_NAMES = (
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
    "Ritchie", "Perlman", "Berners-Lee", "Johnson", "Torvalds", "Lamarr", "McCarthy", "Wilson", "van Rossum",
    "Borg", "Stroustrup", "Sammet", "Wirth", "Jones", "Lamport", "Goldwasser", "Cerf", "Matsumoto",
    "Berezin", "Shannon", "Keller",
)
COMPANY_STEMS = (
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Wonka", "Tyrell",
    "Cyberdyne", "Soylent", "Aperture", "Massive", "Oscorp", "Pied Piper", "Gringotts", "Monarch",
    "Nakatomi", "Virtucon",
)
COMPANY_SUFFIXES = ("Inc", "LLC", "GmbH", "Ltd", "SA", "Labs", "Group", "Systems")
INDUSTRIES = ("COMPUTER_SOFTWARE", "HOSPITAL_HEALTH_CARE", "FINANCIAL_SERVICES", "RETAIL", "EDUCATION_MANAGEMENT",
              "MANUFACTURING", "MARKETING_AND_ADVERTISING", "TELECOMMUNICATIONS")
CITIES = (
    ("Berlin", "BE", "DE", "10115"), ("Paris", "IDF", "FR", "75001"), ("Boston", "MA", "US", "02108"),
    ("Austin", "TX", "US", "73301"), ("London", "LND", "GB", "EC1A"), ("Toronto", "ON", "CA", "M5H"),
    ("Lisbon", "LI", "PT", "1100"), ("Sydney", "NSW", "AU", "2000"),
)
STREETS = ("Main St", "High St", "Market St", "Elm St", "Oak Ave", "Park Rd", "Station Rd", "Mill Ln")
JOB_TITLES = ("Engineer", "Designer", "Product Manager", "Data Analyst", "Recruiter", "Account Executive",
              "Sales Manager", "CTO", "VP Marketing", "Support Lead")
DEPARTMENTS = ("Engineering", "Sales", "Marketing", "Finance", "People", "Support", "Product", "Legal")
WORDS = ("quarterly", "renewal", "expansion", "pilot", "platform", "migration", "enterprise", "starter",
         "upgrade", "annual", "regional", "strategic")

MASK64 = (1 << 64) - 1


def _mix(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK64
    return value ^ (value >> 31)


_SALTS: dict[str, int] = {}


def _salt(name: str) -> int:
    salt = _SALTS.get(name)
    if salt is None:
        salt = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")
        _SALTS[name] = salt
    return salt


class Faker:
    """Value picker for one sandbox seed and object type."""

    def __init__(self, seed: int, namespace: str) -> None:
        self.base = _mix(seed ^ _salt(namespace))
        self._keys: dict[str, int] = {}  # field -> base ^ salt(field), computed once per field

    def number(self, index: int, field: str, modulo: int) -> int:
        # Equal to `_mix(self.base ^ _salt(field) ^ (index * 0x100000001B3 & MASK64)) % modulo`, inlined:
        # the sandbox calls this a dozen times per record it serves (see benchmarks/README.md).
        key = self._keys.get(field)
        if key is None:
            key = self._keys[field] = self.base ^ _salt(field)
        value = ((key ^ (index * 0x100000001B3 & MASK64)) + 0x9E3779B97F4A7C15) & MASK64
        value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK64
        return (value ^ (value >> 31)) % modulo

    def pick(self, index: int, field: str, options: tuple):
        return options[self.number(index, field, len(options))]

    def chance(self, index: int, field: str, percent: int) -> bool:
        return self.number(index, field, 100) < percent

    def person(self, index: int) -> tuple[str, str]:
        return self.pick(index, "first", FIRST_NAMES), self.pick(index, "last", LAST_NAMES)

    def company(self, index: int) -> str:
        return f"{self.pick(index, 'stem', COMPANY_STEMS)} {self.pick(index, 'suffix', COMPANY_SUFFIXES)} {index}"

    def email(self, index: int, first: str, last: str, domain: str = "example.com") -> str:
        return f"{first.lower()}.{last.lower().replace(' ', '').replace('-', '')}.{index}@{domain}"

    def phone(self, index: int, field: str = "phone") -> str:
        return f"+1-555-{self.number(index, field, 900) + 100:03d}-{self.number(index, field + '2', 9000) + 1000:04d}"

    def city(self, index: int) -> tuple[str, str, str, str]:
        return self.pick(index, "city", CITIES)

    def street(self, index: int) -> str:
        return f"{self.number(index, 'street_no', 999) + 1} {self.pick(index, 'street', STREETS)}"

    def words(self, index: int, field: str, count: int = 3) -> str:
        return " ".join(self.pick(index, f"{field}{n}", WORDS) for n in range(count))
