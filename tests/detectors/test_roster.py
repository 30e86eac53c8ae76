"""Rosters count distinct students once each."""

from __future__ import annotations

from tests.factories import findings_in


def test_roster_counts_distinct_students_once_each(engine_inspector):
    text = ("482913 Alex Jones grades; 517204 GPA; Sam Lee GPA; 530001 absent; "
            "Student ID 600123 tardy; Jones, Alex suspended")
    roster = findings_in(engine_inspector, text)["roster"]
    assert roster.distinct == 4  # Alex (number and both name forms), Sam, Maria, 600123
    assert roster.students == frozenset({"482913", "517204", "530001"})
