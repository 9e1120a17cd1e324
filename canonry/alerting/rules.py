"""The alert rules file (`alerts.yml`): rules and where alerts are delivered, as data.

Found at `--alerts`, `CANONRY_ALERTS`, else `alerts.yml` next to the warehouse (`<data dir>/alerts.yml`);
no file means no rule. Read with the connections file's hardened loader (`canonry.config_file`): every
problem is reported with its file:line, and a bad file is refused whole.

```yaml
version: 1
rules:
  - {id: stale, kind: freshness, max_intervals: 2}          # last success older than 2 schedule intervals
  - {id: stale-crm, kind: freshness, max_age: 6h, connections: [hubspot-acme]}
  - {id: failing, kind: failure_rate, window: 6h, threshold: 0.5, min_runs: 2}
  - {id: reauth, kind: needs_reauth, severity: page}
  - {id: parked, kind: parked_rows, max: 100}               # quarantined + rejected push records
  - {id: guard-spike, kind: guard_rejections, window: 1h, max: 20}
destinations:
  - {kind: webhook, url: "https://hooks.slack.com/services/…"}   # Slack-compatible JSON (`text` + `alert`)
  - {kind: email, host: smtp.example.com, port: 587, starttls: true, sender: canonry@example.com,
     to: [oncall@example.com], username: canonry, password: "env:SMTP_PASSWORD"}
```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from canonry.config import (
    SECRET_REFERENCE,
    Problem,
    _schema_code,
    _schema_hint,
    _schema_message,
    make_problem,
    parse_duration,
)
from canonry.errors import ConfigError

RULE_ID = r"^[a-z0-9][a-z0-9_\-]{0,62}$"
Severity = Literal["page", "ticket", "info"]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=RULE_ID, description="stable rule id (one open alert per rule and connection)")
    severity: Severity = "ticket"
    connections: list[str] | None = Field(None, description="only these connection ids (default: all)")


def _duration(value: str | int) -> str | int:
    parse_duration(value)
    return value


Duration = Annotated[str | int, AfterValidator(_duration)]


class FreshnessRule(_Rule):
    """A connection whose last successful sync is older than `max_age`, or than `max_intervals` of its
    schedule (needs the connections file)."""

    kind: Literal["freshness"]
    max_age: Duration | None = None
    max_intervals: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_bound(self):
        if (self.max_age is None) == (self.max_intervals is None):
            raise ValueError("give exactly one of max_age (e.g. 6h) or max_intervals (schedule intervals)")
        return self


class FailureRateRule(_Rule):
    """Failed runs / runs of a connection within `window` at or above `threshold`."""

    kind: Literal["failure_rate"]
    window: Duration = "24h"
    threshold: float = Field(gt=0, le=1)
    min_runs: int = Field(1, ge=1)


class NeedsReauthRule(_Rule):
    """A connection in the `needs_reauth` lifecycle state."""

    kind: Literal["needs_reauth"]


class ParkedRowsRule(_Rule):
    """More than `max` parked records: quarantined rows plus reverse-ETL records whose last push was rejected."""

    kind: Literal["parked_rows"]
    max: int = Field(ge=0)


class GuardRejectionsRule(_Rule):
    """More than `max` guard rejections within `window` (not per connection)."""

    kind: Literal["guard_rejections"]
    window: Duration = "1h"
    max: int = Field(ge=0)


Rule = Annotated[FreshnessRule | FailureRateRule | NeedsReauthRule | ParkedRowsRule | GuardRejectionsRule,
                 Field(discriminator="kind")]


class WebhookDestination(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["webhook"]
    url: str = Field(pattern=r"^https?://", description="receives a JSON POST: {text, alert} (Slack-compatible)")
    timeout_s: float = Field(5, gt=0, le=60)


class EmailDestination(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["email"]
    host: str
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    username: str | None = None
    password: str | None = Field(None, pattern=SECRET_REFERENCE.pattern,
                                 description="a secret reference (env:NAME, local:NAME, vault:PATH)")
    timeout_s: float = Field(10, gt=0, le=60)


Destination = Annotated[WebhookDestination | EmailDestination, Field(discriminator="kind")]


class AlertsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = 1
    rules: list[Rule] = Field(default_factory=list)
    destinations: list[Destination] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self):
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return self


def alerts_path(explicit: str | os.PathLike | None = None) -> Path:
    from canonry.warehouse import data_dir

    return Path(explicit or os.environ.get("CANONRY_ALERTS") or data_dir() / "alerts.yml")


def parse_alerts(path: Path) -> tuple[AlertsFile | None, list[Problem]]:
    """Read and check an alerts file; never raises on its content."""
    from canonry.config_file import load_file

    name = str(path)
    data, lines, refused = load_file(path)
    if refused is not None:
        return None, [Problem(name, refused.line, "", None, refused.message, refused.hint, refused.code)]
    if not isinstance(data, dict):
        return None, [make_problem(name, lines or {(): 1}, (), None, "the alerts file must be a mapping with a "
                                   "`rules:` list", "start the file with `rules:`", "not_a_mapping")]
    try:
        return AlertsFile.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            # A union member's name (`freshness`) is not a key of the file: drop it from the path.
            loc = tuple(p for p in err["loc"] if p not in _KINDS)
            problems.append(make_problem(name, lines, loc, None, _schema_message(err), _schema_hint(err),
                                         _schema_code(err)))
        return None, problems


_KINDS = {"freshness", "failure_rate", "needs_reauth", "parked_rows", "guard_rejections", "webhook", "email"}


def load_alerts(path: str | os.PathLike | None = None, *, required: bool = False) -> AlertsFile | None:
    """The rules file, or None when there is none (and it was not named explicitly); ConfigError listing
    every problem (file:line) when it is invalid."""
    resolved = alerts_path(path)
    if not resolved.exists():
        if required or path is not None:
            raise ConfigError(f"no alerts file at {resolved}",
                              hint="write one (see docs/OBSERVABILITY.md) or set CANONRY_ALERTS")
        return None
    model, problems = parse_alerts(resolved)
    if problems or model is None:
        listing = "\n  ".join(p.render() for p in problems)
        error = ConfigError(f"the alerts file {resolved} is invalid:\n  {listing}",
                            hint="fix the problems listed, then run `canonry alerts check`")
        error.problems = problems
        raise error
    return model
