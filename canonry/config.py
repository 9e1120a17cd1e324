"""The connections file: schema (pydantic), parsing with line numbers, and the shape of a problem (loading
with every semantic check is `canonry.validation.load_connections`).

A connection is one tenant's account at one provider. The file holds *references* to secrets
(`env:NAME`, `local:NAME`, `vault:PATH`), never their values.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from canonry.durations import parse_duration
from canonry.errors import ConfigError
from canonry.warehouse import PROJECT_ROOT

DEFAULT_CONFIG = PROJECT_ROOT / "data" / "connections.yml"
SECRET_REFERENCE = re.compile(r"^(env|local|vault):[A-Za-z0-9_./\-]+(?:#[A-Za-z0-9_.\-]+)?$")
SCHEMA_FILE = PROJECT_ROOT / "docs" / "connections.schema.json"




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
    # No enum in the schema: a new provider is a new folder, not a regenerated docs/connections.schema.json.
    provider: str = Field(description="provider slug: the name of its folder under sources/ (`canonry validate` "
                                      "lists the known ones)")
    auth: AuthConfig
    objects: list[str] | None = Field(None, description="objects to sync (default: all the provider supports); a "
                                      "list must carry the objects its records reference, e.g. HubSpot deals need "
                                      "owners, pipelines and companies (validate: objects_incomplete)")
    schedule: str = Field("0 * * * *", description="cron expression (five fields)")
    schedule_enabled: bool = Field(True, description="run the schedule in Dagster once the daemon runs (false: "
                                                     "the schedule exists but starts stopped)")
    base_url: str | None = Field(None, description="API base URL (a sandbox or a regional host); https only, "
                                                   "loopback excepted")
    lookback: str | int = Field("0s", description="re-read this far behind the cursor (e.g. 10m)")
    raw_retention: str | None = Field(None, description="keep this connection's superseded raw versions this long "
                                                        "(e.g. 30d); each record's latest version always stays. "
                                                        "Unset: `canonry retention apply --default`, "
                                                        "CANONRY_RAW_RETENTION, else 90d")
    deletes: DeleteDetection = Field(default_factory=DeleteDetection)
    write_back: WriteBack = Field(default_factory=WriteBack)
    tls_ca: str | None = Field(None, description="CA bundle (PEM file) to trust for base_url (a sandbox's "
                                                 "self-signed cert); relative paths are read from the working "
                                                 "directory")
    allow_private_network: bool = Field(False, description="let base_url and the OAuth endpoints point at a "
                                                           "private network (RFC 1918, CGNAT 100.64/10, IPv6 "
                                                           "unique-local, or a name resolving there). Off: "
                                                           "only public hosts and loopback. Link-local/cloud "
                                                           "metadata addresses are refused either way")
    webhooks: Webhooks | None = Field(None, description="receive this connection's webhooks (real-time changes "
                                                        "and deletes; batch syncs stay the backstop)")

    @property
    def lookback_delta(self) -> timedelta:
        return parse_duration(self.lookback)


class ConnectionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = Field(1, description="the file format version (1)")
    connections: list[Connection]

    def get(self, connection_id: str) -> Connection:
        for connection in self.connections:
            if connection.id == connection_id:
                return connection
        known = ", ".join(c.id for c in self.connections)
        raise ConfigError(f"no connection {connection_id!r} in the connections file (known: {known})")


@dataclass
class Problem:
    """One problem of the file. `value` is what may be printed: build problems with `make_problem`, which
    masks every value that could be a secret."""

    file: str
    line: int | None
    path: str
    value: Any
    message: str
    hint: str

    code: str = ""

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        shown = f" (value: {self.value!r})" if self.value is not None else ""
        return f"{where}: [{self.code}] {self.path or '(file)'}: {self.message}{shown}. Hint: {self.hint}"

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "code": self.code, "path": self.path, "value": self.value,
                "message": self.message, "hint": self.hint}


# Fields whose values are never secrets: shown as written. Every other value is masked (`mask`): a value
# under an unknown key (`token:`, `auth.password:`), a file that is not a connections file at all.
PUBLIC_FIELDS = frozenset({
    "version", "id", "tenant", "provider", "kind", "client_id", "scopes", "objects", "schedule", "lookback",
    "enabled", "full_scan_every", "tls_ca", "allow_private_network", "raw_retention",
})
URL_FIELDS = frozenset({"base_url", "redirect_uri", "authorize_url", "token_url", "revoke_url"})
SECRET_FIELDS = frozenset({"secret", "client_secret"})
PUBLIC_MAPPINGS = frozenset({"field_mappings"})  # provider field -> canonical field: both public
MAX_SHOWN = 120


def mask(value: Any) -> str:
    """What is printed for a value that could be a secret: its type and size, none of its characters."""
    if isinstance(value, str):
        return f"…({len(value)} chars, masked)"
    if isinstance(value, dict | list):
        return f"…({type(value).__name__} of {len(value)}, masked)"
    return f"…({type(value).__name__}, masked)"


def display_value(path: tuple, value: Any) -> Any:
    """The value of the field at `path` as it may be printed."""
    from canonry.netsafety import display_url
    from canonry.secrets import redact_reference

    if value is None or isinstance(value, bool):
        return value
    keys = [p for p in path if not isinstance(p, int)]
    field = keys[-1] if keys else None
    parent = keys[-2] if len(keys) > 1 else None
    if field in SECRET_FIELDS and isinstance(value, str):
        return redact_reference(value)
    if field in URL_FIELDS and isinstance(value, str):
        return display_url(value)
    if field in PUBLIC_FIELDS or parent in PUBLIC_MAPPINGS or field in PUBLIC_MAPPINGS:
        if isinstance(value, dict | list):
            return None
        text = value if isinstance(value, str) else str(value)
        return value if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"
    return mask(value)


def display_path(path: tuple) -> str:
    from canonry.config_file import safe_key

    return ".".join(str(p) if isinstance(p, int) else safe_key(p) for p in path)


def make_problem(file: str, lines: dict[tuple, int], path: tuple, value: Any, message: str, hint: str,
                 code: str) -> Problem:
    """A problem at `path`, with its line and a printable (masked) value."""
    return Problem(file, _nearest_line(lines, path), display_path(path), display_value(path, value), message,
                   hint, code)


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    """`--config`, else CANONRY_CONFIG, else data/connections.yml; when none of these exists yet but a demo
    ran, the demo's resolved file (`<data dir>/demo-connections.resolved.yml`), said on stderr."""
    chosen = explicit or os.environ.get("CANONRY_CONFIG")
    if chosen:
        return Path(chosen)
    if DEFAULT_CONFIG.exists():
        return DEFAULT_CONFIG
    from canonry.warehouse import data_dir

    demo = data_dir() / DEMO_RESOLVED_NAME
    if demo.exists():
        global _DEMO_NOTE_SHOWN
        if not _DEMO_NOTE_SHOWN:
            _DEMO_NOTE_SHOWN = True
            print(f"note: no {DEFAULT_CONFIG.name} yet ({DEFAULT_CONFIG}); using the demo's connections, {demo}",
                  file=sys.stderr)
        return demo
    return DEFAULT_CONFIG


DEMO_RESOLVED_NAME = "demo-connections.resolved.yml"
_DEMO_NOTE_SHOWN = False


def _nearest_line(lines: dict[tuple, int], path: tuple) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def parse_file(path: Path) -> tuple[ConnectionsFile | None, list[Problem], dict[tuple, int], Any]:
    """Read, parse and schema-check; returns (model or None, problems, line index, raw data).

    Never raises on the file's content: an unreadable, oversized, non-UTF-8 or hostile file is a problem."""
    from canonry.config_file import load_file

    name = str(path)
    data, lines, refused = load_file(path)
    if refused is not None:
        return None, [Problem(name, refused.line, "", None, refused.message, refused.hint, refused.code)], {}, None
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
        return None, [make_problem(name, lines or {(): 1}, (), data, f"the file must be a mapping with a `connections:` "
                                   f"list (it is {what})", "start the file with `connections:`",
                                   "not_a_mapping")], lines, data
    try:
        return ConnectionsFile.model_validate(data), [], lines, data
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            problems.append(make_problem(name, lines, loc, err.get("input"), _schema_message(err), _schema_hint(err),
                                         _schema_code(err)))
        return None, problems, lines, data


def _schema_message(err: dict) -> str:
    if tuple(err["loc"]) == ("version",):
        return "unsupported file version"
    return err["msg"]


def _schema_code(err: dict) -> str:
    if tuple(err["loc"]) == ("version",):
        return "unsupported_version"
    return {"missing": "missing_key", "extra_forbidden": "unknown_key",
            "literal_error": "invalid_choice"}.get(err.get("type", ""), "invalid_value")


def _schema_hint(err: dict) -> str:
    kind = err.get("type", "")
    if tuple(err["loc"]) == ("version",):
        return "this canonry reads version 1 files: write `version: 1`"
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
