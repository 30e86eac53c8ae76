"""Dates of birth: a date right next to a birth keyword ("DOB", "born", "date of birth", a DOB
column) and an identified student nearby. A birthday party date on its own is not a record."""

from __future__ import annotations

from gateway.detectors.analysis import Analysis, with_students
from gateway.detectors.base import finding, mask_date, students_of
from gateway.model import Finding

name = "dob"


def scan(a: Analysis) -> Finding | None:
    found, students = with_students(a, a.dates)
    return finding(name, a, found, mask_date, students_of(students))
