"""Anything the extraction could not read: encrypted, corrupt, unsupported, or cut off by a
limit (depth, part count, size, expansion ratio, time budget). One finding per location, so
the policy holds the message (fail closed); the reason is in the location, safe to log."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.extract.base import Problem
from gateway.model import Finding

name = "uninspectable"


def from_problems(problems: Sequence[Problem]) -> list[Finding]:
    seen: dict[tuple[str, str], int] = {}
    for p in problems:
        seen[(p.location, p.reason)] = seen.get((p.location, p.reason), 0) + 1
    return [Finding(name, count, f"{location} ({reason})", 1, frozenset(), reason)
            for (location, reason), count in seen.items()]
