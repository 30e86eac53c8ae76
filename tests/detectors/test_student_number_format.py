"""Numbers in the District format count only next to a student keyword; a configured
format with a look-behind works on every engine."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.config import DistrictSettings
from gateway.inspect import build_inspector
from tests.factories import AVAILABLE_ENGINES, FakeDirectory, findings_in, make_settings


@pytest.mark.parametrize(("text", "hit"), [
    ("Student ID 600123", True), ("student # 600123", True), ("SID: 600123", True),
    ("ID 600123", True), ("600123 (student)", True),
    ("Order ID 600123", False), ("Invoice number 600123", False), ("PO 600123", False),
    ("We raised 600123 dollars", False), ("student phone 555-600123", False),
])
def test_student_number_format_needs_context(engine_inspector, text, hit):
    assert ("student_number_format" in findings_in(engine_inspector, text)) is hit


def test_configured_format_with_lookbehind_works_on_every_engine():
    for engine in AVAILABLE_ENGINES:
        district = DistrictSettings(student_number_pattern=r"(?<![\d-])S\d{5}\b")
        settings = replace(make_settings(), district=district)
        ins = build_inspector(settings, FakeDirectory(), {}, engine=engine)
        assert "student_number_format" in findings_in(ins, "Student ID S12345 joined")
        assert "student_number_format" not in findings_in(ins, "Student ID 12345 joined")


@pytest.mark.parametrize(("text", "hit"), [
    ("Lot number 600777 was recalled.", False),
    ("Chromebook asset ID 612345 needs a screen.", False),
    ("Student Chromebook asset tag 612346 is in the library.", False),
    ("Return Chromebook 612347 (asset ID) to room 12.", False),
    ("Batch no. 600778 is fine.", False),
    ("Order for student 600123 shipped.", True),  # the nearest label says student
    ("Student ID 600123 needs a locker.", True),
])
def test_equipment_and_stock_numbers_are_not_student_numbers(engine_inspector, text, hit):
    assert ("student_number_format" in findings_in(engine_inspector, text)) is hit
