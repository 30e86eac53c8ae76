"""The inspector as a whole: it pickles and is thread-safe, never raises (and logs no values
when a detector fails), works without the fast engines, skips parts with nothing to
anchor a detector, and holds a part with more matches than it may analyse."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor

import pytest
from structlog.testing import capture_logs

import gateway.inspect as inspect_module
from gateway.detectors import PART_DETECTORS, lexicon, student_number
from gateway.detectors.analysis import analyse, prepare
from gateway.inspect import Inspector
from gateway.model import Part
from tests.factories import detectors, make_inspector, make_settings, message


def test_pickle_round_trip_and_threads(engine_inspector):
    raw = message("Alex Jones SSN 524-61-3378, GPA 3.2", subject="Sam Lee IEP")
    expected = engine_inspector.inspect(raw)
    clone = pickle.loads(pickle.dumps(engine_inspector))
    assert clone.inspect(raw) == expected
    with ThreadPoolExecutor(4) as pool:
        assert all(r == expected for r in pool.map(clone.inspect, [raw] * 16))


def test_never_raises_and_logs_no_values(monkeypatch):
    inspector = make_inspector()

    def boom(analysis):
        raise ValueError("524-61-3378")

    monkeypatch.setattr(student_number, "scan", boom)
    with capture_logs() as logs:
        result = inspector.inspect(message("SSN 524-61-3378"))
    assert detectors(result) == {"uninspectable"} and not result.complete
    assert logs and "3378" not in repr(logs)


def test_inspector_is_usable_without_fast_engines():
    ins = Inspector(make_settings().inspection, r"\b\d{6}\b", [("482913", "Alex Jones")], {},
                    engine="re")
    assert ins.engine == "re"
    assert "student_number" in detectors(ins.inspect(message("482913")))


@pytest.mark.parametrize("text", [
    "Grades, attendance, IEP, discipline, birthday, student ID, SSN, date of birth.",
    "Weekly newsletter: the concert is moved; volunteers please bring forms to the office.",
    "Student Name ; Grade ; Room\nStudent Name: ; Grade: ; Room:",
    "",
])
@pytest.mark.parametrize(("kind", "ctype"), [("subject", "text/plain"), ("body", "text/html"),
                                             ("attachment", "text/csv")])
def test_a_part_without_anchors_skips_the_detectors_and_finds_what_they_would(
        engine_inspector, text, kind, ctype):
    """No number, date, name or lexicon term: the detectors get nothing (scan_part's
    shortcut), and given the same empty hit lists they would report nothing either."""
    part = Part(text, f"{kind} here", kind, ctype, "grades.csv" if kind == "attachment" else None)
    assert engine_inspector.analyse(part) is None
    assert engine_inspector.scan_part(part) == []
    a = analyse(part, prepare(text), [], [], engine_inspector.directory)
    assert [f for d in PART_DETECTORS if (f := d.scan(a))] + lexicon.scan_all(a) == []


def test_a_part_with_too_many_matches_is_held_not_analysed_for_minutes(monkeypatch):
    """Millions of IDs in one part used to run 8-25 s past the time budget; past a match
    count the part is reported uninspectable (fail closed) instead."""
    monkeypatch.setattr(inspect_module, "MAX_MATCHES_PER_PART", 50)
    body = "\n".join("grades 482913 dob 03/04/2010 ssn 524-61-3378" for _ in range(40))
    result = make_inspector().inspect(message(body))
    assert not result.complete
    assert [f.location for f in result.findings if f.detector == "uninspectable"] == \
        ["body (match count limit)"]
    small = make_inspector().inspect(message("grades 482913 dob 03/04/2010 ssn 524-61-3378"))
    assert small.complete
