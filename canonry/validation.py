"""Semantic checks of the connections file, run before anything syncs (`canonry validate`).

Each check is a small named function over one connection returning problems; `CHECKS` lists them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from canonry.config import Connection, ConnectionsFile, Problem, _nearest_line, parse_duration, parse_file
from canonry.secrets import SecretNotFound, resolve_secret

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def provider_settings(provider: str):
    from sources import PROVIDERS

    if provider not in PROVIDERS:
        return None
    return importlib.import_module(f"sources.{provider}.settings")


Check = Callable[[Connection, tuple, Callable[[tuple, object, str, str], Problem]], list[Problem]]


def check_provider_and_objects(conn, loc, problem):
    from sources import PROVIDERS

    settings = provider_settings(conn.provider)
    if settings is None:
        return [problem(loc + ("provider",), conn.provider, "unknown provider",
                        f"use one of: {', '.join(PROVIDERS)}")]
    out = []
    for i, name in enumerate(conn.objects or []):
        if name not in settings.OBJECTS:
            out.append(problem(loc + ("objects", i), name, f"{conn.provider} has no object {name!r}",
                               f"supported objects: {', '.join(settings.OBJECTS)}"))
    if conn.auth.kind not in settings.AUTH_KINDS:
        out.append(problem(loc + ("auth", "kind"), conn.auth.kind, f"{conn.provider} does not support this auth kind",
                           f"use one of: {', '.join(settings.AUTH_KINDS)}"))
    return out


def check_secret_references(conn, loc, problem):
    out = []
    for key in ("secret", "client_secret"):
        reference = getattr(conn.auth, key)
        if reference is None:
            continue
        try:
            resolve_secret(reference)
        except SecretNotFound as exc:
            out.append(problem(loc + ("auth", key), reference, f"secret reference does not resolve: {exc.reason}",
                               exc.hint))
    return out


def check_schedule(conn, loc, problem):
    from croniter import croniter

    if not croniter.is_valid(conn.schedule):
        return [problem(loc + ("schedule",), conn.schedule, "invalid cron expression",
                        "use five fields, e.g. '0 * * * *' for hourly")]
    return []


def check_base_url(conn, loc, problem):
    if conn.base_url is None:
        return []
    parts = urlsplit(conn.base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [problem(loc + ("base_url",), conn.base_url, "not an absolute http(s) URL",
                        "write it like https://api.example.com")]
    if parts.scheme != "https" and parts.hostname not in LOOPBACK_HOSTS:
        return [problem(loc + ("base_url",), conn.base_url, "base URL is not https",
                        "use https (plain http is accepted only for loopback sandboxes)")]
    return []


def check_lookback(conn, loc, problem):
    try:
        parse_duration(conn.lookback)
        parse_duration(conn.deletes.full_scan_every)
    except ValueError as exc:
        return [problem(loc + ("lookback",), conn.lookback, str(exc), "use e.g. 10m or 1h")]
    return []


def check_write_back(conn, loc, problem):
    settings = provider_settings(conn.provider)
    if settings is None or not conn.write_back.enabled:
        return []
    out = []
    writable = getattr(settings, "WRITE_SCOPES", {})
    for i, name in enumerate(conn.write_back.objects):
        if name not in writable:
            out.append(problem(loc + ("write_back", "objects", i), name,
                               f"{conn.provider} cannot write {name!r}",
                               f"writable objects: {', '.join(writable) or 'none'}"))
        elif conn.auth.scopes is not None and writable[name] not in conn.auth.scopes:
            out.append(problem(loc + ("write_back", "objects", i), name,
                               f"write-back of {name!r} needs scope {writable[name]!r}",
                               f"add {writable[name]} to auth.scopes and reconnect"))
    from canonry.canonical import canonical_fields

    known = canonical_fields()
    for provider_field, canonical_field in conn.write_back.field_mappings.items():
        if canonical_field not in known:
            out.append(problem(loc + ("write_back", "field_mappings", provider_field), canonical_field,
                               "maps to a canonical field that does not exist",
                               "use a `table.column` of the canonical model, e.g. crm_contacts.first_name"))
    return out


CHECKS: tuple[Check, ...] = (
    check_provider_and_objects, check_secret_references, check_schedule, check_base_url, check_lookback,
    check_write_back,
)


def validate_model(model: ConnectionsFile, file: str, lines: dict) -> list[Problem]:
    problems: list[Problem] = []

    def problem(path: tuple, value, message: str, hint: str) -> Problem:
        return Problem(file, _nearest_line(lines, path), ".".join(str(p) for p in path), value, message, hint)

    seen: dict[str, int] = {}
    for i, conn in enumerate(model.connections):
        loc = ("connections", i)
        if conn.id in seen:
            problems.append(problem(loc + ("id",), conn.id, f"duplicate connection id (first at connections.{seen[conn.id]})",
                                    "give every connection a unique id"))
        seen.setdefault(conn.id, i)
        for check in CHECKS:
            problems += check(conn, loc, problem)
    return problems


def validate_file(path: Path) -> tuple[ConnectionsFile | None, list[Problem]]:
    model, problems, lines, _ = parse_file(path)
    if model is None:
        return None, problems
    problems = validate_model(model, str(path), lines)
    return (model if not problems else model), problems
