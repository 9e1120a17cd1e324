"""Durations as the connections file and the CLI write them (`90s`, `15m`, `2h`, `1d`), both directions.

A leaf of the kit (imports nothing of canonry): sources, alerting, retention and config all use it.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
MAX_DURATION = timedelta(days=366)


def parse_duration(value: str | int) -> timedelta:
    """`90s`, `15m`, `2h`, `1d` or a number of seconds; never negative, at most a year."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("not a duration (use e.g. 30s, 15m, 2h, 1d)")
    if isinstance(value, int):
        amount, unit = value, "s"
    else:
        match = _DURATION.match(value.strip())
        if not match:
            raise ValueError("not a duration (use e.g. 30s, 15m, 2h, 1d)")
        amount, unit = int(match.group(1)), match.group(2)
    if amount < 0:
        raise ValueError("a duration cannot be negative")
    seconds = amount * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError("a duration longer than a year")
    return timedelta(seconds=seconds)


def format_duration(seconds: float) -> str:
    """A duration for people (`45s`, `12m`, `3.5h`): the inverse direction of `parse_duration`."""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
