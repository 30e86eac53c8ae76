"""Known student numbers from the directory, matched exactly (whole token, not inside a longer
number, not right after "order"/"invoice"-type words). A student number alone is student-record
data: it is how the district identifies the student on every record."""

from __future__ import annotations

from gateway.detectors.analysis import Analysis
from gateway.detectors.base import finding, mask_number
from gateway.model import Finding

name = "student_number"


def scan(a: Analysis) -> Finding | None:
    return finding(name, a, a.known, mask_number)
