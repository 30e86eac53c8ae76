"""Full names of directory students, counted only next to record content (a student number, an
SSN, a birth date, or a record-category word within 300 characters). A name on its own (a class
newsletter, "thanks to Alex Jones for helping") is not a record. Also matches "Last, First"."""

from __future__ import annotations

from gateway.detectors.analysis import Analysis, Mention, near
from gateway.detectors.base import finding, mask_name
from gateway.model import Finding

name = "student_name"


def qualified(a: Analysis) -> list[Mention]:
    """The name mentions that stand next to record content (also used by `roster`)."""
    content = a.record_content()
    starts = [m.start for m in content]
    return [m for m in a.names if near(content, starts, m)]


def scan(a: Analysis) -> Finding | None:
    return finding(name, a, qualified(a), mask_name)
