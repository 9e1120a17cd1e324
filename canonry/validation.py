"""Semantic checks of the connections file, run before anything syncs (`canonry validate`).

Each check is a small named function over one connection returning problems; `CHECKS` lists them.
A problem carries the file, the line, the offending value (a mask, never a secret), a hint and a
stable `code` (what tests and `--json` consumers match on):

| code | meaning |
|---|---|
| file_not_found, not_a_file, file_unreadable, file_too_large, not_utf8 | the path is not a readable, small (1 MB), UTF-8 file |
| yaml_syntax, yaml_tag, yaml_multiple_documents, not_a_mapping | the file is not one YAML mapping of plain values |
| yaml_too_many_nodes, yaml_too_deep, yaml_alias | > 25k values or nesting > 32 (aliases expanded), an alias cycle: refused before building anything |
| duplicate_key, invalid_key | a key written twice in one mapping (both lines named), a key that is a list/mapping |
| unsupported_version | `version:` other than 1 |
| missing_key, unknown_key, invalid_choice, invalid_value | schema (pydantic) problems |
| duplicate_id | two connections share an id |
| unknown_provider, unknown_object, auth_kind_unsupported | provider / object / auth kind not supported |
| objects_incomplete | `objects:` leaves out the object feeding a table a listed object's rows reference (a tested foreign key) |
| secret_not_reference | a secret field holds something that is not env:/local:/vault: (a pasted value?) |
| secret_unresolved | the reference does not resolve (variable unset, name not in the store, vault error) |
| secret_not_writable | an oauth2 token set behind env: (rotating tokens must be written back) |
| token_wrong_connection | the stored token set was issued to another connection |
| oauth_client_missing | oauth2 / client_credentials without client_id / client_secret |
| redirect_uri_invalid | the redirect URI is not http://127.0.0.1:<port>/<path> (or localhost) |
| invalid_cron | the schedule is not a five-field cron expression |
| base_url_invalid, base_url_not_https | a URL that is not absolute, or plain http to a non-loopback host |
| base_url_required | the provider serves each account on its own host (its spec's base URL has a `<placeholder>`) |
| url_userinfo, url_host_obfuscated, url_ambiguous | user@host, decimal/octal/hex/IPv6-mapped IPv4, parser tricks |
| url_forbidden_address | link-local / cloud metadata, unspecified, multicast, reserved (never allowed) |
| url_private_network, url_resolves_private | a private address, or a name resolving to one, without `allow_private_network` |
| tls_ca_not_found, tls_ca_invalid | `tls_ca` names no readable file, or a file with no PEM certificate |
| invalid_duration | lookback / full_scan_every / raw_retention not like 30s, 15m, 2h, 1d, negative, or over a year |
| check_failed | a check met something it could not judge (reported, never a traceback) |

Values are printed only for fields that are never secrets (`config.PUBLIC_FIELDS`); secret references as
references; URLs with user info and query masked; anything else as `…(N chars, masked)`.
| write_not_supported | write-back for an object the provider cannot write |
| write_scope_missing | write-back without the write scope (explicit scopes, or the stored grant) |
| scope_missing, excess_scope | explicit scopes lack a read scope / carry a write scope without write-back |
| unknown_canonical_field | a field mapping names a canonical field that does not exist |
| webhook_setting_missing | webhooks: without what the provider's webhook authentication needs (secret, username, org id) |
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError

from canonry import providers
from canonry.canonical import FOREIGN_KEYS, canonical_fields
from canonry.config import Connection, ConnectionsFile, Problem, config_path, make_problem, parse_file
from canonry.durations import parse_duration
from canonry.errors import ConfigError
from canonry.netsafety import NotResolved, check_url
from canonry.oauth_endpoints import least_scopes
from canonry.providers import ProviderSpec
from canonry.secrets import REFERENCE, SecretNotFound, redact_reference, resolve_secret

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# A spec base URL naming a per-account host part (`https://<subdomain>.workable.com`): a connection must set its own.
ACCOUNT_HOST_PLACEHOLDER = re.compile(r"<[a-z_]+>")
# URL problems reported as themselves for a redirect URI (any other shape is `redirect_uri_invalid`).
REDIRECT_TRICKS = ("url_userinfo", "url_host_obfuscated", "url_ambiguous", "url_forbidden_address")


def provider_spec(provider: str) -> ProviderSpec | None:
    """The provider's spec, or None for a slug no folder under sources/ declares (reported once, by
    check_provider_and_objects)."""
    return providers.spec(provider) if providers.is_provider(provider) else None


@dataclass
class Context:
    """What every check gets besides the connection."""

    loc: tuple
    problem: Callable[..., Problem]
    require_tokens: bool = True
    # False: the caller extracts only (`canonry sync --no-transform`): no dbt relationships test will run
    # on what it syncs, so an `objects:` subset that would fail them is not a problem there.
    builds_canonical: bool = True


Check = Callable[[Connection, Context], list[Problem]]


def check_provider_and_objects(conn: Connection, ctx: Context) -> list[Problem]:
    spec = provider_spec(conn.provider)
    if spec is None:
        return [ctx.problem(ctx.loc + ("provider",), conn.provider, "unknown provider",
                            f"use one of: {', '.join(providers.slugs())}", "unknown_provider")]
    out = []
    for i, name in enumerate(conn.objects or []):
        if name not in spec.object_names:
            out.append(ctx.problem(ctx.loc + ("objects", i), name, f"{conn.provider} has no object {name!r}",
                                   f"supported objects: {', '.join(spec.object_names)}", "unknown_object"))
    if conn.auth.kind not in spec.auth_kinds:
        out.append(ctx.problem(ctx.loc + ("auth", "kind"), conn.auth.kind,
                               f"{conn.provider} does not support this auth kind",
                               f"use one of: {', '.join(spec.auth_kinds)}", "auth_kind_unsupported"))
    return out


def check_objects_complete(conn: Connection, ctx: Context) -> list[Problem]:
    """An `objects:` list must carry, for every row a listed object feeds, the objects feeding the tables
    that row references (canonical.FOREIGN_KEYS, each a dbt relationships test): HubSpot deals without owners
    make opportunities whose owner_user_id no crm_users row has. A table no object of the provider feeds is
    not reported (nothing could fill it); an opt-in object counts only when listed, like any other."""
    spec = provider_spec(conn.provider)
    if spec is None or not conn.objects or not ctx.builds_canonical:
        return []
    listed = set(conn.objects)
    out, reported = [], set()
    for i, name in enumerate(conn.objects):
        if name not in spec.object_names:
            continue   # unknown_object
        for table in spec.object(name).feeds:
            for key, referenced in FOREIGN_KEYS.items():
                feeders = spec.objects_feeding(referenced)
                if key.split(".")[0] != table or not feeders or listed & set(feeders) or \
                        (name, referenced) in reported:
                    continue
                reported.add((name, referenced))
                out.append(ctx.problem(
                    ctx.loc + ("objects", i), name,
                    f"{conn.provider}: objects lists {name}, whose {key} references {referenced}, fed by "
                    f"{' or '.join(feeders)} (not listed): dbt's relationships tests would fail",
                    f"add {feeders[0]} to objects, or drop objects: to sync every default object",
                    "objects_incomplete"))
    return out


def check_secret_references(conn: Connection, ctx: Context) -> list[Problem]:
    out = []
    for key in ("secret", "client_secret"):
        reference = getattr(conn.auth, key)
        if reference is None:
            continue
        path = ctx.loc + ("auth", key)
        if not REFERENCE.match(reference):
            out.append(ctx.problem(path, redact_reference(reference),
                                   "not a secret reference (a secret value pasted into the file?)",
                                   "write env:NAME, local:NAME or vault:MOUNT/PATH; if a real secret was "
                                   "pasted here, rotate it", "secret_not_reference"))
            continue
        is_token_set = key == "secret" and conn.auth.kind == "oauth2"
        if is_token_set and reference.startswith("env:"):
            out.append(ctx.problem(path, reference, "an oauth2 token set cannot live in an environment variable",
                                   "use local:NAME or vault:PATH: refreshed (rotating) tokens are written back",
                                   "secret_not_writable"))
            continue
        if is_token_set and not ctx.require_tokens:
            continue
        try:
            value = resolve_secret(reference)
        except SecretNotFound as exc:
            hint = exc.hint
            if is_token_set:
                hint = f"authorise the connection: `canonry connect {conn.id}`"
            out.append(ctx.problem(path, reference, f"secret reference does not resolve: {exc.reason}", hint,
                                   "secret_unresolved"))
            continue
        if is_token_set:
            out += _check_token_set(conn, ctx, path, value)
    return out


def _check_token_set(conn: Connection, ctx: Context, path: tuple, raw: str) -> list[Problem]:
    try:
        token = json.loads(raw)
    except ValueError:
        return []  # a bare access token (private app): nothing to check
    if not isinstance(token, dict):
        return []
    owner = token.get("connection_id")
    if owner and owner != conn.id:
        return [ctx.problem(path, conn.auth.secret, f"the stored token set was issued to connection {owner!r}",
                            f"give {conn.id} its own reference and run `canonry connect {conn.id}`",
                            "token_wrong_connection")]
    granted = token.get("scopes")
    spec = provider_spec(conn.provider)
    out = []
    if conn.write_back.enabled and isinstance(granted, list) and spec is not None:
        writable = spec.write_scopes
        for i, name in enumerate(conn.write_back.objects):
            scope = writable.get(name)
            if scope and scope not in granted:
                out.append(ctx.problem(ctx.loc + ("write_back", "objects", i), name,
                                       f"write-back of {name!r} needs scope {scope!r}, which the stored grant lacks",
                                       f"re-authorise with write access: `canonry connect {conn.id}`",
                                       "write_scope_missing"))
    return out


def _secret_is_client_document(reference: str) -> bool:
    """A client-credentials secret may be one JSON document {client_id, client_secret, …} (Greenhouse).
    A secret that does not resolve is given the benefit of the doubt: `secret_unresolved` already reports
    it, and what it will hold once set is unknown (no second, possibly false, problem)."""
    try:
        document = json.loads(resolve_secret(reference))
    except SecretNotFound:
        return True
    except ValueError:
        return False
    return isinstance(document, dict) and bool(document.get("client_id")) and bool(document.get("client_secret"))


def check_oauth_client(conn: Connection, ctx: Context) -> list[Problem]:
    auth = conn.auth
    if auth.kind == "api_key":
        return []
    out = []
    if not auth.client_id and not _secret_is_client_document(auth.secret):
        out.append(ctx.problem(ctx.loc + ("auth",), None, f"{auth.kind} needs auth.client_id",
                               "add the client id the provider issued (it is not a secret)", "oauth_client_missing"))
    if auth.kind == "oauth2":
        if not auth.client_secret:
            out.append(ctx.problem(ctx.loc + ("auth",), None, "oauth2 needs auth.client_secret (a reference)",
                                   "add client_secret: local:NAME (store it with `canonry secret set NAME`)",
                                   "oauth_client_missing"))
        if not auth.redirect_uri:
            out.append(ctx.problem(ctx.loc + ("auth",), None, "oauth2 needs auth.redirect_uri",
                                   "add the exact redirect URI registered with the provider, e.g. "
                                   "http://127.0.0.1:8765/callback", "redirect_uri_invalid"))
        else:
            path = ctx.loc + ("auth", "redirect_uri")
            shape = [p for p in check_url(auth.redirect_uri, resolver=_no_resolution) if p.code in REDIRECT_TRICKS]
            if shape:
                return out + [ctx.problem(path, auth.redirect_uri, f"redirect_uri: {shape[0].message}",
                                          "register and use e.g. http://127.0.0.1:8765/callback", shape[0].code)]
            parts = urlsplit(auth.redirect_uri)
            try:
                port = parts.port
            except ValueError:  # not a number, or out of range
                port = None
            if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or not port or not parts.path:
                out.append(ctx.problem(ctx.loc + ("auth", "redirect_uri"), auth.redirect_uri,
                                       "the redirect URI must be a loopback address with a port and a path",
                                       "register and use e.g. http://127.0.0.1:8765/callback (canonry connect "
                                       "listens there, on 127.0.0.1 only)", "redirect_uri_invalid"))
    return out


def check_schedule(conn: Connection, ctx: Context) -> list[Problem]:
    from croniter import croniter  # only files with schedules pay for loading it

    if len(conn.schedule.split()) != 5 or not croniter.is_valid(conn.schedule):
        return [ctx.problem(ctx.loc + ("schedule",), conn.schedule, "invalid cron expression",
                            "use five fields, e.g. '0 * * * *' for hourly", "invalid_cron")]
    return []


def _no_resolution(host: str) -> list[str]:
    raise NotResolved(host)  # a redirect URI must be a loopback literal or localhost: nothing to resolve


def check_urls(conn: Connection, ctx: Context) -> list[Problem]:
    """Every URL a credential travels to: well-formed, https (loopback excepted), pointing at a public
    host (or loopback; a private network only with allow_private_network). Names are resolved now and
    the address is checked again when the socket connects (canonry.netsafety)."""
    spec = provider_spec(conn.provider)
    if conn.base_url is None and spec is not None and ACCOUNT_HOST_PLACEHOLDER.search(spec.base_url):
        # The provider serves each account on its own host (Workable: <subdomain>.workable.com).
        return [ctx.problem(ctx.loc, None, f"{spec.title} serves each account on its own host: base_url is "
                            f"required", f"add `base_url: {spec.base_url}` with your account's value",
                            "base_url_required")]
    urls = [(("base_url",), conn.base_url, "base URL")]
    urls += [(("auth", key), getattr(conn.auth, key), key) for key in ("authorize_url", "token_url", "revoke_url")]
    out = []
    for path, url, what in urls:
        if url is None:
            continue
        for found in check_url(url, allow_private=conn.allow_private_network):
            out.append(ctx.problem(ctx.loc + path, url, f"{what}: {found.message}", found.hint, found.code))
    return out


def check_tls_ca(conn: Connection, ctx: Context) -> list[Problem]:
    if conn.tls_ca is None:
        return []
    path = ctx.loc + ("tls_ca",)
    ca = Path(conn.tls_ca)
    if not ca.is_file():
        return [ctx.problem(path, conn.tls_ca, "no such file" if not ca.exists() else "not a regular file",
                            "name the PEM file of the CA (or the sandbox's self-signed certificate)",
                            "tls_ca_not_found")]
    try:
        with open(ca, "rb") as handle:
            head = handle.read(1024 * 1024)
    except OSError as exc:
        return [ctx.problem(path, conn.tls_ca, f"cannot read the file ({exc.strerror})",
                            "check the file's permissions", "tls_ca_not_found")]
    if b"-----BEGIN CERTIFICATE-----" not in head:
        return [ctx.problem(path, conn.tls_ca, "the file holds no PEM certificate",
                            "name a PEM file (-----BEGIN CERTIFICATE-----)", "tls_ca_invalid")]
    return []


def check_lookback(conn: Connection, ctx: Context) -> list[Problem]:
    out = []
    durations = [(("lookback",), conn.lookback), (("deletes", "full_scan_every"), conn.deletes.full_scan_every)]
    if conn.raw_retention is not None:
        durations.append((("raw_retention",), conn.raw_retention))
    for path, value in durations:
        try:
            parse_duration(value)
        except ValueError as exc:
            out.append(ctx.problem(ctx.loc + path, value, str(exc), "use e.g. 10m or 1h (0s to a year)",
                                   "invalid_duration"))
    return out


def check_scopes(conn: Connection, ctx: Context) -> list[Problem]:
    spec = provider_spec(conn.provider)
    if spec is None or conn.auth.scopes is None or conn.auth.kind == "api_key":
        return []
    needed = least_scopes(conn)
    write_scopes = set(spec.write_scopes.values())
    out = []
    for scope in needed:
        if scope not in conn.auth.scopes and scope not in write_scopes:  # write scopes: check_write_back
            out.append(ctx.problem(ctx.loc + ("auth", "scopes"), scope, f"scope {scope!r} is needed by the "
                                   "configured objects but not listed",
                                   "add it, or drop auth.scopes to use the least scopes automatically",
                                   "scope_missing"))
    for i, scope in enumerate(conn.auth.scopes):
        if scope in write_scopes and scope not in needed:
            out.append(ctx.problem(ctx.loc + ("auth", "scopes", i), scope,
                                   "write scope requested without write-back for that object",
                                   "least privilege: remove it, or enable write_back for the object",
                                   "excess_scope"))
    return out


def check_write_back(conn: Connection, ctx: Context) -> list[Problem]:
    spec = provider_spec(conn.provider)
    out = []
    if spec is not None and conn.write_back.enabled:
        writable = spec.write_scopes
        for i, name in enumerate(conn.write_back.objects):
            if name not in writable:
                out.append(ctx.problem(ctx.loc + ("write_back", "objects", i), name,
                                       f"{conn.provider} cannot write {name!r}",
                                       f"writable objects: {', '.join(writable) or 'none'}", "write_not_supported"))
            elif conn.auth.scopes is not None and writable[name] not in conn.auth.scopes:
                out.append(ctx.problem(ctx.loc + ("write_back", "objects", i), name,
                                       f"write-back of {name!r} needs scope {writable[name]!r}",
                                       f"add {writable[name]} to auth.scopes and reconnect", "write_scope_missing"))
    known = canonical_fields()
    for provider_field, canonical_field in conn.write_back.field_mappings.items():
        if canonical_field not in known:
            out.append(ctx.problem(ctx.loc + ("write_back", "field_mappings", provider_field), canonical_field,
                                   "maps to a canonical field that does not exist",
                                   "use a `table.column` of the canonical model, e.g. crm_contacts.first_name",
                                   "unknown_canonical_field"))
    return out


def check_webhooks(conn: Connection, ctx: Context) -> list[Problem]:
    """What each provider's webhook authentication needs (its SPEC.webhook.settings)."""
    if conn.webhooks is None or not conn.webhooks.enabled:
        return []
    spec = provider_spec(conn.provider)
    out = []
    loc = ctx.loc + ("webhooks",)
    for key in (spec.webhook.settings if spec and spec.webhook else ()):
        if not getattr(conn.webhooks, key):
            out.append(ctx.problem(loc, None, f"{conn.provider} webhooks need webhooks.{key}",
                                   f"add webhooks.{key} (see docs/WEBHOOKS.md)", "webhook_setting_missing"))
    reference = conn.webhooks.secret
    if reference is None:
        return out
    if not REFERENCE.match(reference):
        out.append(ctx.problem(loc + ("secret",), redact_reference(reference),
                               "not a secret reference (a secret value pasted into the file?)",
                               "write env:NAME, local:NAME or vault:MOUNT/PATH; if a real secret was pasted "
                               "here, rotate it", "secret_not_reference"))
        return out
    try:
        resolve_secret(reference)
    except SecretNotFound as exc:
        out.append(ctx.problem(loc + ("secret",), reference, f"secret reference does not resolve: {exc.reason}",
                               exc.hint, "secret_unresolved"))
    return out


CHECKS: tuple[Check, ...] = (
    check_provider_and_objects, check_objects_complete, check_secret_references, check_oauth_client,
    check_schedule, check_urls, check_tls_ca, check_lookback, check_scopes, check_write_back, check_webhooks,
)


def validate_model(model: ConnectionsFile, file: str, lines: dict, *, require_tokens: bool = True,
                   builds_canonical: bool = True) -> list[Problem]:
    return _validate_connections(list(enumerate(model.connections)), file, lines, require_tokens, builds_canonical)


def _validate_connections(pairs: list[tuple[int, Connection]], file: str, lines: dict,
                          require_tokens: bool, builds_canonical: bool = True) -> list[Problem]:
    problems: list[Problem] = []

    def problem(path: tuple, value, message: str, hint: str, code: str = "") -> Problem:
        return make_problem(file, lines, path, value, message, hint, code)

    seen: dict[str, int] = {}
    for i, conn in pairs:
        loc = ("connections", i)
        if conn.id in seen:
            problems.append(problem(loc + ("id",), conn.id,
                                    f"duplicate connection id (first at line "
                                    f"{lines.get(('connections', seen[conn.id], 'id'))})",
                                    "give every connection a unique id", "duplicate_id"))
        seen.setdefault(conn.id, i)
        ctx = Context(loc, problem, require_tokens, builds_canonical)
        for check in CHECKS:
            try:
                problems += check(conn, ctx)
            except Exception as exc:  # noqa: BLE001 — a hostile value must not end validation in a traceback
                problems.append(problem(loc, None, f"{check.__name__} could not judge this connection "
                                        f"({type(exc).__name__})", "check the values of this connection",
                                        "check_failed"))
    return problems


def validate_file(path: Path, *, require_tokens: bool = True,
                  builds_canonical: bool = True) -> tuple[ConnectionsFile | None, list[Problem]]:
    """Parse, schema-check and run every check; every problem at once, in file order.

    A connection with a schema problem is reported and skipped; the other connections are still checked.
    """
    model, problems, lines, data = parse_file(Path(path))
    if model is not None:
        problems = validate_model(model, str(path), lines, require_tokens=require_tokens,
                                  builds_canonical=builds_canonical)
    elif isinstance(data, dict) and isinstance(data.get("connections"), list):
        pairs = []
        for i, raw in enumerate(data["connections"]):
            try:
                pairs.append((i, Connection.model_validate(raw)))
            except ValidationError:
                continue  # already reported by parse_file
        problems = problems + _validate_connections(pairs, str(path), lines, require_tokens, builds_canonical)
    problems.sort(key=lambda p: (p.line or 0))
    return model, problems


def load_connections(path: str | os.PathLike | None = None, *, require_tokens: bool = True,
                     builds_canonical: bool = True) -> ConnectionsFile:
    """Load and validate the connections file; raise ConfigError listing every problem (also as
    `.problems`, masked like `canonry validate`'s). Never raises anything else for a bad file.

    `require_tokens=False` (used by `canonry connect`) accepts an oauth2 connection whose token set is
    not stored yet — connecting is what stores it. `builds_canonical=False` (`canonry sync --no-transform`)
    accepts an `objects:` list that would fail dbt's relationships tests (`objects_incomplete`): nothing
    is built from what it syncs.
    """
    resolved = config_path(path)
    model, problems = validate_file(resolved, require_tokens=require_tokens, builds_canonical=builds_canonical)
    if problems or model is None:
        listing = "\n  ".join(p.render() for p in problems)
        error = ConfigError(f"the connections file {resolved} is invalid:\n  {listing}",
                            hint="fix the problems listed, then run `canonry validate`")
        error.problems = problems  # structured, for callers that report them (the Dagster code location)
        raise error
    return model
