"""Numbers in the district's student-number format (`district.student_number_pattern`) that are
not in the directory, counted only next to "student", "ID", "SID", "student #" and similar (or
under a "Student ID" column), so order numbers and phone numbers stay silent."""

from __future__ import annotations

from gateway.detectors.analysis import Analysis
from gateway.detectors.base import finding, mask_number
from gateway.model import Finding

name = "student_number_format"


def scan(a: Analysis) -> Finding | None:
    return finding(name, a, a.formatted, mask_number)
