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
SECRET_REFERENCE = re.compile(r"^(env|local|vault):[A-Za-z0-9_./\-]+(?:#[A-Za-z0-9_.\-]+)?$")
SCHEMA_FILE = PROJECT_ROOT / "docs" / "connections.schema.json"
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
    """How the connection authenticates. Secrets are references (env:NAME, local:NAME, vault:PATH)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["oauth2", "client_credentials", "api_key"] = Field(
        description="oauth2: authorization code + PKCE (`canonry connect`); client_credentials: a client id "
                    "and secret mint tokens (Greenhouse v3); api_key: a static key or private-app token")
    secret: str = Field(description="secret reference — env:NAME, local:NAME or vault:MOUNT/PATH[#key] — never a "
                                    "value. oauth2: where `canonry connect` stores the token set; api_key: the "
                                    "key; client_credentials: the client secret (or a JSON client document)")
    client_id: str | None = Field(None, description="OAuth client id (not a secret)")
    client_secret: str | None = Field(None, description="secret reference for the OAuth client secret")
    scopes: list[str] | None = Field(None, description="explicit scopes; default: the least the configured "
                                                       "objects need (read scopes; write scopes only with "
                                                       "write-back)")
    redirect_uri: str | None = Field(None, description="the exact redirect URI registered with the provider; "
                                                       "must be http://127.0.0.1:<port>/<path> (canonry connect "
                                                       "listens there)")
    authorize_url: str | None = Field(None, description="override the provider's authorization endpoint")
    token_url: str | None = Field(None, description="override the provider's token endpoint")
    revoke_url: str | None = Field(None, description="override the provider's revocation endpoint")
    params: dict[str, str] = Field(default_factory=dict,
                                   description="extra non-secret token/authorize parameters (Lever `audience`, "
                                               "Greenhouse `sub`)")


class DeleteDetection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(True, description="detect records deleted at the provider")
    full_scan_every: str = Field("1d", description="how often a full key scan flags records gone from the provider")


class WriteBack(BaseModel):
    """Reverse ETL: which provider objects canonry may write (needs the provider's write scopes)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    objects: list[str] = Field(default_factory=list, description="provider objects to write")
    field_mappings: dict[str, str] = Field(default_factory=dict,
                                           description="provider field -> canonical field")


class Webhooks(BaseModel):
    """Webhook intake (`canonry webhooks serve`, route /hooks/<connection id>)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(True, description="accept this connection's webhooks")
    secret: str | None = Field(None, description="secret reference for what authenticates deliveries: the "
                                                 "HubSpot app's client secret, the Greenhouse/Ashby secret key, "
                                                 "the Lever signature token, the Pipedrive basic-auth password")
    username: str | None = Field(None, description="Pipedrive: the basic-auth user name set on the webhook")
    organization_id: str | None = Field(None, description="Salesforce: the org id Outbound Messages must carry")


class Connection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", description="unique connection id (lower case, - and _)")
    tenant: str = Field(description="the tenant (customer) this connection belongs to")
    provider: str = Field(description="provider slug: hubspot, salesforce, greenhouse, lever, ashby, pipedrive")
    auth: AuthConfig
    objects: list[str] | None = Field(None, description="objects to sync (default: all the provider supports)")
    schedule: str = Field("0 * * * *", description="cron expression (five fields)")
    base_url: str | None = Field(None, description="API base URL (a sandbox or a regional host); https only, "
                                                   "loopback excepted")
    lookback: str | int = Field("0s", description="re-read this far behind the cursor (e.g. 10m)")
    deletes: DeleteDetection = Field(default_factory=DeleteDetection)
    write_back: WriteBack = Field(default_factory=WriteBack)
    tls_ca: str | None = Field(None, description="CA bundle to trust for base_url (a sandbox's self-signed cert)")
    webhooks: Webhooks | None = Field(None, description="receive this connection's webhooks (real-time changes "
                                                        "and deletes; batch syncs stay the backstop)")

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

    code: str = ""

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (f"{where}: [{self.code}] {self.path}: {self.message} (value: {self.value!r}). "
                f"Hint: {self.hint}")

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "code": self.code, "path": self.path, "value": self.value,
                "message": self.message, "hint": self.hint}


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
                              "create it (see data/connections.example.yml) or pass --config or set "
                              "CANONRY_CONFIG", "file_not_found")], {}, None
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
        lines = _line_index(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [Problem(name, mark.line + 1 if mark else None, "", None,
                              f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
                              "fix the YAML syntax at that line", "yaml_syntax")], {}, None
    if not isinstance(data, dict):
        return None, [Problem(name, 1, "", data, "the file must be a mapping with a `connections:` list",
                              "start the file with `connections:`", "not_a_mapping")], lines, data
    try:
        return ConnectionsFile.model_validate(data), [], lines, data
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            value = err.get("input")
            if isinstance(value, dict | list):
                value = None
            if loc and loc[-1] in ("secret", "client_secret") and isinstance(value, str):
                from canonry.secrets import redact_reference

                value = redact_reference(value)  # never echo what may be a pasted secret
            problems.append(Problem(name, _nearest_line(lines, loc), ".".join(str(p) for p in loc),
                                    value, err["msg"], _schema_hint(err), _schema_code(err)))
        return None, problems, lines, data


def _schema_code(err: dict) -> str:
    return {"missing": "missing_key", "extra_forbidden": "unknown_key",
            "literal_error": "invalid_choice"}.get(err.get("type", ""), "invalid_value")


def _schema_hint(err: dict) -> str:
    kind = err.get("type", "")
    if kind == "missing":
        return "add this required key"
    if kind == "extra_forbidden":
        return "remove this key or check its spelling"
    if kind == "literal_error":
        return f"use one of the allowed values ({err.get('ctx', {}).get('expected', '')})"
    return "see the JSON Schema (`canonry validate --schema`) for the expected shape"


def json_schema() -> dict:
    """The JSON Schema of the connections file (for editors: docs/connections.schema.json)."""
    schema = ConnectionsFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Canonry connections file"
    return schema


def load_connections(path: str | os.PathLike | None = None, *, require_tokens: bool = True) -> ConnectionsFile:
    """Load and validate the connections file; raise ConfigError listing every problem.

    `require_tokens=False` (used by `canonry connect`) accepts an oauth2 connection whose token set is
    not stored yet — connecting is what stores it.
    """
    from canonry.validation import validate_file

    resolved = config_path(path)
    model, problems = validate_file(resolved, require_tokens=require_tokens)
    if problems or model is None:
        listing = "\n  ".join(p.render() for p in problems)
        raise ConfigError(f"the connections file {resolved} is invalid:\n  {listing}",
                          hint="fix the problems listed, then run `canonry validate`")
    return model
