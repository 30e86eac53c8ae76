"""What every detector shares: the Finding it builds and the masks for its `sample`.

Samples are for the quarantine reviewer ("which SSN?") and never reach a log: `Finding.public()`
drops them. They are masked anyway, so even the reviewer view shows only enough to recognise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from gateway.detectors.analysis import Analysis, Mention
from gateway.model import Finding

Scan = Callable[[Analysis], "Finding | None"]
_DIGIT = re.compile(r"\d")


def mask_number(value: str) -> str:
    """`482913` → `****13`."""
    return "*" * max(len(value) - 2, 0) + value[-2:]


def mask_ssn(value: str) -> str:
    """`524-61-3378` → `***-**-3378`."""
    return "***-**-" + "".join(ch for ch in value if ch.isdigit())[-4:]


def mask_name(value: str) -> str:
    """`Jane Doe` → `J*** D**`."""
    return " ".join(w[:1] + "*" * (len(w) - 1) for w in value.split())


def mask_date(value: str) -> str:
    """`03/04/2009` → `**/**/****`."""
    return _DIGIT.sub("*", value)


def students_of(mentions: Iterable[Mention]) -> frozenset[str]:
    return frozenset(pid for m in mentions for pid in m.pids)


def finding(detector: str, a: Analysis, found: Sequence[Mention],
            mask: Callable[[str], str], students: frozenset[str] = frozenset()) -> Finding | None:
    """One Finding for this part, or None when nothing was found."""
    if not found:
        return None
    distinct = len({m.key if m.pids else m.value.lower() for m in found})
    return Finding(detector, len(found), a.part.location, distinct,
                   students or students_of(found), mask(found[0].value))
