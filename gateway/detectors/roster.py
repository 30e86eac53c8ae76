"""Several distinct identified students in one part or attachment (or spreadsheet sheet):
`distinct` says how many, and the policy applies its threshold (5 by default, P8). Students are
identified by known or in-context student numbers, or by names standing with record content."""

from __future__ import annotations

from gateway.detectors import student_name
from gateway.detectors.analysis import Analysis
from gateway.detectors.base import students_of
from gateway.model import Finding

name = "roster"
MINIMUM = 2


def scan(a: Analysis) -> Finding | None:
    people = a.known + a.formatted + student_name.qualified(a)
    keys = {m.key for m in people}
    if len(keys) < MINIMUM:
        return None
    return Finding(name, len(keys), a.part.location, len(keys), students_of(people), None)
