"""Test helpers: read a sandbox's truth and request log, read canonical tables."""

from __future__ import annotations

import requests

from canonry.warehouse import connect


def truth(server, object_name: str) -> list[dict]:
    response = requests.get(f"{server.base_url}/_sandbox/truth/{object_name}", timeout=30)
    response.raise_for_status()
    return response.json()["records"]


def mutate(server, object_name: str, **actions) -> dict[str, list[str]]:
    response = requests.post(f"{server.base_url}/_sandbox/mutate", json={"object": object_name, **actions},
                             timeout=30)
    response.raise_for_status()
    return response.json()


def request_log(server) -> list[dict]:
    return requests.get(f"{server.base_url}/_sandbox/requests", timeout=30).json()["requests"]


def clear_request_log(server) -> None:
    requests.delete(f"{server.base_url}/_sandbox/requests", timeout=30)


def set_faults(server, **plan) -> None:
    requests.post(f"{server.base_url}/_sandbox/faults", json=plan, timeout=30).raise_for_status()


def query(sql: str, params: list | None = None) -> list[dict]:
    conn = connect()
    try:
        cursor = conn.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        conn.close()


def execute(sql: str, params: list | None = None) -> None:
    conn = connect()
    try:
        conn.execute(sql, params or [])
    finally:
        conn.close()


def lineage(*providers: str) -> list[str]:
    """dbt selectors for what these providers' data feeds: their staging and intermediate models, the
    canonical marts and reverse-ETL models downstream, the tests on those, and every parent they read
    (`@`): the seeds and the other providers' models unioned into the same marts (empty here). A test
    of one provider builds this instead of the whole project (about half of it for a CRM or an ATS).

    (`canonry.transform.lineage_selection` names `source:<p>+` and the seeds only: on a warehouse where
    the other providers of the same marts were never built, their intermediate models are missing.)"""
    return [f"@source:{provider}" for provider in providers]


def canonical(table: str, provider: str | None = None) -> dict[str, dict]:
    """Canonical rows keyed by remote_id."""
    where = f"where provider = '{provider}'" if provider else ""
    return {row["remote_id"]: row for row in query(f"select * from canonical.{table} {where}")}
