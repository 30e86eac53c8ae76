"""Timestamps and durations as the quarantine stores and the review CLI read them.

Stored times are UTC ISO-8601 strings of one fixed shape, so that SQL string comparison is
time comparison and a database copied between hosts in different time zones still sorts.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as local time (Python's own convention), then made UTC."""
    return moment.astimezone(UTC)


def to_db(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_db(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `2w`, `90m`, `45s` → timedelta; ValueError with a usable message."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: '{text}' (use e.g. 30d, 12h, 2w)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A duration back from now (`24h`) or an ISO date/datetime (`2025-01-31T08:00`)."""
    try:
        return (now or utcnow()) - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a time: '{text}' (use e.g. 24h, 7d or 2025-01-31)") from None
    return as_utc(moment)
