"""Dates and durations as operators type them: ``--expires 2027-01-31`` / ``90d``, ``--grace 24h``."""

from __future__ import annotations

import datetime as dt
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_duration(raw: str) -> float:
    """Seconds in ``90``, ``30s``, ``15m``, ``24h``, ``7d`` or ``2w``."""
    match = _DURATION.match(raw)
    if match is None:
        raise ValueError(f"{raw!r} is not a duration like 30m, 24h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_expiry(raw: str, *, now: float) -> float:
    """Unix time of an ISO date (midnight UTC), a date-time (UTC unless it says), or now + a duration.

    Refuses a time that is not in the future.
    """
    try:
        at = now + parse_duration(raw)
    except ValueError:
        try:
            when = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{raw!r} is not a date (2027-01-31, 2027-01-31T18:00Z) or a duration (90d)"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        at = when.timestamp()
    if at <= now:
        raise ValueError(f"{raw!r} is not in the future")
    return at
