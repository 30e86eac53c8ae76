"""US Social Security numbers as Microsoft defines them: the same separator twice (or nine
plain digits), SSA-valid area/group/serial, the published fakes ignored, and an SSN keyword
within 300 characters (100 for undelimited digits) or an SSN column header."""

from __future__ import annotations

from gateway.detectors.analysis import Analysis, near
from gateway.detectors.base import finding, mask_ssn, students_of
from gateway.model import Finding

name = "ssn"


def scan(a: Analysis) -> Finding | None:
    people = a.identities()
    starts = [m.start for m in people]
    students = students_of(p for m in a.ssns for p in near(people, starts, m))
    return finding(name, a, a.ssns, mask_ssn, students)
