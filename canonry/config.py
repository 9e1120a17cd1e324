"""The connections file: schema (pydantic), loading with line numbers, and validation problems.

A connection is one tenant's account at one provider. The file holds *references* to secrets
(`env:NAME`, `local:NAME`, `vault:PATH`), never their values.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from canonry.errors import ConfigError
from canonry.warehouse import PROJECT_ROOT

DEFAULT_CONFIG = PROJECT_ROOT / "data" / "connections.yml"
SECRET_REFERENCE = re.compile(r"^(env|local|vault):[A-Za-z0-9_./\-]+$")
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")


def parse_duration(value: str | int) -> timedelta:
    """`90s`, `15m`, `2h`, `1d` or a number of seconds."""
    if isinstance(value, int):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value).strip())
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 15m, 2h, 1d)")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: amount})


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["oauth2", "client_credentials", "api_key"]
    secret: str = Field(description="secret reference: env:NAME, local:NAME or vault:PATH — never a value")
    client_id: str | None = None
    client_secret: str | None = Field(None, description="secret reference for the OAuth client secret")
    scopes: list[str] | None = None
    redirect_uri: str | None = None


class DeleteDetection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    full_scan_every: str = Field("1d", description="how often a full key scan flags records gone from the provider")


class WriteBack(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    objects: list[str] = Field(default_factory=list)
    field_mappings: dict[str, str] = Field(default_factory=dict,
                                           description="provider field -> canonical field")


class Connection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    tenant: str
    provider: str
    auth: AuthConfig
    objects: list[str] | None = None
    schedule: str = "0 * * * *"
    base_url: str | None = None
    lookback: str | int = "0s"
    deletes: DeleteDetection = Field(default_factory=DeleteDetection)
    write_back: WriteBack = Field(default_factory=WriteBack)
    tls_ca: str | None = Field(None, description="CA bundle to trust for base_url (a sandbox's self-signed cert)")

    @property
    def lookback_delta(self) -> timedelta:
        return parse_duration(self.lookback)


class ConnectionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = 1
    connections: list[Connection]

    def get(self, connection_id: str) -> Connection:
        for connection in self.connections:
            if connection.id == connection_id:
                return connection
        known = ", ".join(c.id for c in self.connections)
        raise ConfigError(f"no connection {connection_id!r} in the connections file (known: {known})")


@dataclass
class Problem:
    file: str
    line: int | None
    path: str
    value: Any
    message: str
    hint: str

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message} (value: {self.value!r}). Hint: {self.hint}"


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    return Path(explicit or os.environ.get("CANONRY_CONFIG") or DEFAULT_CONFIG)


def _line_index(text: str) -> dict[tuple, int]:
    """Map YAML paths (tuples of keys/indexes) to 1-based line numbers."""
    lines: dict[tuple, int] = {}

    def walk(node: yaml.Node, path: tuple) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[path + (key.value,)] = key.start_mark.line + 1
                walk(value, path + (key.value,))
                lines[path + (key.value,)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, path + (i,))

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return lines


def _nearest_line(lines: dict[tuple, int], path: tuple) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def parse_file(path: Path) -> tuple[ConnectionsFile | None, list[Problem], dict[tuple, int], Any]:
    """Parse and schema-check; returns (model or None, schema problems, line index, raw data)."""
    name = str(path)
    if not path.exists():
        return None, [Problem(name, None, "", None, "connections file not found",
                              "create it (see data/connections.example.yml) or pass --config")], {}, None
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
        lines = _line_index(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [Problem(name, mark.line + 1 if mark else None, "", None, f"not valid YAML: {exc}",
                              "fix the YAML syntax at that line")], {}, None
    if not isinstance(data, dict):
        return None, [Problem(name, 1, "", data, "the file must be a mapping with a `connections:` list",
                              "start the file with `connections:`")], lines, data
    try:
        return ConnectionsFile.model_validate(data), [], lines, data
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            value = err.get("input")
            problems.append(Problem(name, _nearest_line(lines, loc), ".".join(str(p) for p in loc),
                                    value if not isinstance(value, dict) else None, err["msg"],
                                    _schema_hint(err)))
        return None, problems, lines, data


def _schema_hint(err: dict) -> str:
    kind = err.get("type", "")
    if kind == "missing":
        return "add this required key"
    if kind == "extra_forbidden":
        return "remove this key or check its spelling"
    if kind == "literal_error":
        return f"use one of the allowed values ({err.get('ctx', {}).get('expected', '')})"
    return "see the JSON Schema (`canonry validate --schema`) for the expected shape"


def load_connections(path: str | os.PathLike | None = None) -> ConnectionsFile:
    """Load and validate the connections file; raise ConfigError listing every problem."""
    from canonry.validation import validate_file

    resolved = config_path(path)
    model, problems = validate_file(resolved)
    if problems or model is None:
        listing = "\n  ".join(p.render() for p in problems)
        raise ConfigError(f"the connections file {resolved} is invalid:\n  {listing}",
                          hint="fix the problems listed, then run `canonry validate`")
    return model
