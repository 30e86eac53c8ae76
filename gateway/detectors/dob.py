"""Dates of birth: a date right next to a birth keyword ("DOB", "born", "date of birth", a DOB
column) and an identified student nearby. A birthday party date on its own is not a record."""

from __future__ import annotations

from gateway.detectors.analysis import Analysis, near
from gateway.detectors.base import finding, mask_date, students_of
from gateway.model import Finding

name = "dob"


def scan(a: Analysis) -> Finding | None:
    people = a.identities()
    starts = [m.start for m in people]
    found, students = [], []
    for date in a.dates:
        nearby = near(people, starts, date)
        if nearby:
            found.append(date)
            students.extend(nearby)
    return finding(name, a, found, mask_date, students_of(students))
