"""Student names: an ambiguous name names every candidate."""

from __future__ import annotations

from gateway.inspect import build_inspector
from tests.factories import FakeDirectory, findings_in, make_settings


def test_ambiguous_names_name_every_candidate():
    ins = build_inspector(make_settings(), FakeDirectory([("1", "Pat Kim"), ("2", "Pat Kim")]), {})
    f = findings_in(ins, "Pat Kim: GPA 2.0")["student_name"]
    assert f.students == frozenset({"1", "2"})
