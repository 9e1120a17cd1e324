"""Drives the `ashby` SDK (PyPI, community) against an Ashby sandbox. Imports nothing from Canonry. Only
the base URL differs from a real run (the client's BASE_URL, set on the instance).

    python run_ashby_sdk.py BASE_URL API_KEY  -> JSON on stdout: {object: [model as a dict, ...]}
"""

import dataclasses
import json
import sys

from ashby_sdk import AshbyClient


def main() -> None:
    base_url, api_key = sys.argv[1:3]
    client = AshbyClient(api_key=api_key)
    client.BASE_URL = base_url.rstrip("/")
    listed = {
        "candidates": client.candidates.list(),
        "applications": client.applications.list(),
        "jobs": client.jobs.list(),
        "offers": client.offers.list(),
        "interview_schedules": client.interview_schedules.list(),
        "users": client.users.list(),
        "departments": client.departments.list(),
        "locations": client.locations.list(),
        "archive_reasons": client.archive_reasons.list(),
        "sources": client.sources.list(),
    }
    json.dump({name: [dataclasses.asdict(m) for m in models] for name, models in listed.items()}, sys.stdout,
              default=str)


if __name__ == "__main__":
    main()
