"""The error taxonomy (DESIGN.md): every failure is one of these classes, and the class decides
whether it is retried and what happens to the connection."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorClass(StrEnum):
    AUTH_EXPIRED = "auth_expired"
    PERMISSION_DENIED = "permission_denied"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXHAUSTED = "quota_exhausted"
    TRANSIENT = "transient"
    PROVIDER_CONTRACT = "provider_contract"
    CONFIG_ERROR = "config_error"
    DATA_ERROR = "data_error"


@dataclass(frozen=True)
class ErrorPolicy:
    retried: bool
    connection_state: str | None  # what the connection becomes (None: unchanged)
    hint: str


POLICIES: dict[ErrorClass, ErrorPolicy] = {
    ErrorClass.AUTH_EXPIRED: ErrorPolicy(False, "needs_reauth",
                                         "re-authorise the connection with `canonry connect <connection id>`"),
    ErrorClass.PERMISSION_DENIED: ErrorPolicy(False, "misconfigured",
                                              "grant the missing scope or module to the credential, then re-run"),
    ErrorClass.RATE_LIMITED: ErrorPolicy(True, None, "retried automatically after the provider's back-off"),
    ErrorClass.QUOTA_EXHAUSTED: ErrorPolicy(False, "degraded",
                                            "the daily API budget is spent; the next run resumes from the checkpoint"),
    ErrorClass.TRANSIENT: ErrorPolicy(True, None, "retried with exponential back-off; re-run if it persists"),
    ErrorClass.PROVIDER_CONTRACT: ErrorPolicy(False, "failing",
                                              "the provider answered something we do not understand; the raw "
                                              "sample is kept — report it with `canonry trace`"),
    ErrorClass.CONFIG_ERROR: ErrorPolicy(False, "misconfigured", "fix the connections file; `canonry validate` "
                                                                 "lists every problem"),
    ErrorClass.DATA_ERROR: ErrorPolicy(False, None, "the record is quarantined with its reason"),
}


class CanonryError(Exception):
    """An error with its class and where it happened. Messages never contain credentials."""

    def __init__(self, error_class: ErrorClass, message: str, *, provider: str | None = None,
                 connection_id: str | None = None, endpoint: str | None = None, status: int | None = None,
                 hint: str | None = None) -> None:
        self.error_class = ErrorClass(error_class)
        self.provider, self.connection_id, self.endpoint, self.status = provider, connection_id, endpoint, status
        from canonry.secrets import redact  # messages never carry a registered secret

        self.detail = redact(message)
        self.hint = redact(hint or POLICIES[self.error_class].hint)
        super().__init__(self.render())

    @property
    def retried(self) -> bool:
        return POLICIES[self.error_class].retried

    @property
    def connection_state(self) -> str | None:
        return POLICIES[self.error_class].connection_state

    def render(self) -> str:
        where = " ".join(part for part in (
            f"provider={self.provider}" if self.provider else "",
            f"connection={self.connection_id}" if self.connection_id else "",
            f"endpoint={self.endpoint}" if self.endpoint else "",
            f"status={self.status}" if self.status is not None else "",
        ) if part)
        return f"[{self.error_class.value}] {self.detail} ({where}). What to do: {self.hint}"


class ConfigError(CanonryError):
    def __init__(self, message: str, **kwargs) -> None:
        super().__init__(ErrorClass.CONFIG_ERROR, message, **kwargs)


RUNBOOKS_DIR = "docs/runbooks"


def runbook(error_class: str | None) -> str | None:
    """The runbook page of an error class (a path relative to the repository root), None for no/unknown class."""
    if error_class not in ErrorClass._value2member_map_:
        return None
    return f"{RUNBOOKS_DIR}/{error_class}.md"
