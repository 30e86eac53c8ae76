"""Student names: an ambiguous name names every candidate."""

from __future__ import annotations

import pytest

from gateway.inspect import build_inspector
from tests.factories import FakeDirectory, findings_in, make_settings


def test_ambiguous_names_name_every_candidate():
    ins = build_inspector(make_settings(), FakeDirectory([("1", "Pat Kim"), ("2", "Pat Kim")]), {})
    f = findings_in(ins, "Pat Kim: GPA 2.0")["student_name"]
    assert f.students == frozenset({"1", "2"})


@pytest.mark.parametrize("text", [
    "Alex\r\nJones was suspended.", "Alex  Jones was suspended.", "Alex\tJones was suspended.",
    "Jones,\r\nAlex was suspended.",
])
def test_a_name_wrapped_or_spaced_is_the_name(engine_inspector, text):
    assert "student_name" in findings_in(engine_inspector, text)


@pytest.mark.parametrize("text", [
    "Grades 6-8 band concert featuring a solo by Alex Jones.",
    "Name: Alex Jones Grade: 9",
    "Alex Jones (grades K-5 art show) painted the mural.",
    "Great attendance at the science fair; congratulations to Alex Jones!",
])
def test_year_groups_and_events_are_not_records(engine_inspector, text):
    assert findings_in(engine_inspector, text) == {}


@pytest.mark.parametrize("text", [
    "Name: Alex Jones Grade: B+", "Name: Alex Jones Grade: 95",
    "Alex Jones: final grades 9 subjects failing", "Alex Jones has poor attendance at school.",
])
def test_grades_and_attendance_about_a_student_still_count(engine_inspector, text):
    assert "record_category" in findings_in(engine_inspector, text)
