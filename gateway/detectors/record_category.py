"""Record categories (grades/transcripts/GPA/class rank, IEP/504/special education, discipline,
attendance, health/immunisation/medical, free or reduced lunch), counted only when an identified
student stands within 300 characters: "IEP training on Tuesday" is not a record."""

from __future__ import annotations

from gateway.detectors.analysis import Analysis, with_students
from gateway.detectors.base import finding, students_of
from gateway.model import Finding

name = "record_category"


def scan(a: Analysis) -> Finding | None:
    found, students = with_students(a, a.categories)
    return finding(name, a, found, str, students_of(students))
