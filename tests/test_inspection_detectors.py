"""Detector rules as tables: SSN validity, keyword distances, name/category pairing, rosters,
lexicons, masks; engines agree; the inspector pickles, is thread-safe and never raises."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from structlog.testing import capture_logs

from gateway.config import DistrictSettings
from gateway.detectors import student_number
from gateway.detectors.analysis import valid_ssn
from gateway.detectors.base import mask_date, mask_name, mask_number, mask_ssn
from gateway.detectors.patternset import ENGINES, hyperscan, re2
from gateway.inspect import Inspector, build_inspector
from gateway.model import Part
from tests.inspection_helpers import (
    FakeDirectory,
    by_detector,
    detectors,
    make_inspector,
    make_settings,
    message,
)

ENGINES_HERE = [e for e in ENGINES
                if e == "re" or (e == "hyperscan" and hyperscan) or (e == "re2" and re2)]


@pytest.fixture(scope="module", params=ENGINES_HERE)
def inspector(request):
    return make_inspector(engine=request.param)


def found(inspector, text: str) -> dict:
    return {f.detector: f for f in inspector.scan_part(Part(text, "body"))}


@pytest.mark.parametrize(("value", "valid"), [
    ("524-61-3378", True), ("524613378", True), ("001-01-0001", True), ("899-99-9999", True),
    ("000-61-3378", False), ("666-61-3378", False), ("900-61-3378", False),
    ("999-61-3378", False), ("524-00-3378", False), ("524-61-0000", False),
    ("078-05-1120", False), ("219-09-9999", False), ("123-45-6789", False),
])
def test_ssn_ranges(value, valid):
    assert valid_ssn(value) is valid


@pytest.mark.parametrize(("text", "hit"), [
    ("SSN: 524-61-3378", True),
    ("SSN" + " x" * 140 + " 524-61-3378", True),  # keyword 280 characters away
    ("SSN" + " x" * 200 + " 524-61-3378", False),  # 400 away
    ("524-61-3378 is her social security number", True),
    ("SSN 524-61 3378", False),  # mixed separators
    ("SS# 524613378", True),
    ("SSN" + " x" * 60 + " 524613378", False),  # undelimited digits need the keyword closer
    ("Part 524-61-3378 shipped", False),
])
def test_ssn_keyword_rules(inspector, text, hit):
    assert ("ssn" in found(inspector, text)) is hit


@pytest.mark.parametrize(("text", "hit"), [
    ("Student ID 600123", True), ("student # 600123", True), ("SID: 600123", True),
    ("ID 600123", True), ("600123 (student)", True),
    ("Order ID 600123", False), ("Invoice number 600123", False), ("PO 600123", False),
    ("We raised 600123 dollars", False), ("student phone 555-600123", False),
])
def test_student_number_format_needs_context(inspector, text, hit):
    assert ("student_number_format" in found(inspector, text)) is hit


def test_configured_format_with_lookbehind_works_on_every_engine():
    for engine in ENGINES_HERE:
        district = DistrictSettings(student_number_pattern=r"(?<![\d-])S\d{5}\b")
        settings = replace(make_settings(), district=district)
        ins = build_inspector(settings, FakeDirectory(), {}, engine=engine)
        assert "student_number_format" in found(ins, "Student ID S12345 joined")
        assert "student_number_format" not in found(ins, "Student ID 12345 joined")


@pytest.mark.parametrize(("text", "expected"), [
    ("Alex Jones was suspended", {"student_name", "record_category"}),
    ("JONES, ALEX - detention", {"student_name", "record_category"}),
    ("Alex Jones helped at the fair", set()),
    ("Alex Jonesy was suspended", set()),
    ("Alex Jones" + " x" * 200 + " suspended", set()),
    ("IEP training on Tuesday", set()),
    ("482913 was absent", {"student_number", "record_category"}),
    ("Alex Jones DOB 04/12/2010", {"student_name", "dob"}),
    ("Alex Jones party on 04/12/2010", set()),
])
def test_names_and_categories_need_each_other(inspector, text, expected):
    assert set(found(inspector, text)) - {"roster"} == expected


def test_roster_counts_distinct_students_once_each(inspector):
    text = ("482913 Alex Jones grades; 517204 GPA; Sam Lee GPA; 530001 absent; "
            "Student ID 600123 tardy; Jones, Alex suspended")
    roster = found(inspector, text)["roster"]
    assert roster.distinct == 4  # Alex (number and both name forms), Sam, Maria, 600123
    assert roster.students == frozenset({"482913", "517204", "530001"})


def test_ambiguous_names_name_every_candidate():
    ins = build_inspector(make_settings(), FakeDirectory([("1", "Pat Kim"), ("2", "Pat Kim")]), {})
    f = found(ins, "Pat Kim: GPA 2.0")["student_name"]
    assert f.students == frozenset({"1", "2"})


def test_known_numbers_ignore_order_words_and_longer_numbers(inspector):
    assert "student_number" in found(inspector, "Ticket for 482913 (student)")
    for text in ("Order #482913", "call 555-482913", "4829130", "A482913", "482913.55"):
        assert "student_number" not in found(inspector, text), text


def test_lexicon_whole_words_phrases_any_case(inspector):
    assert found(inspector, "You IDIOT.")["lexicon:harassment"].count == 1
    assert found(inspector, "shut\n  up now")["lexicon:harassment"].count == 1
    assert "lexicon:harassment" not in found(inspector, "an idiotic plan; shutup")


def test_media_by_content(inspector):
    raw = message("x", attachments=[("song.txt", b"ID3\x03" + b"\x00" * 40, "text/plain")])
    assert by_detector(inspector.inspect(raw))["media"][0].sample == "audio/mpeg"


def test_masks():
    assert (mask_ssn("524-61-3378"), mask_number("482913"), mask_name("Jane Doe"),
            mask_date("03/04/2009")) == ("***-**-3378", "****13", "J*** D**", "**/**/****")


def test_samples_are_masked_and_public_view_has_no_student_data(inspector):
    result = inspector.inspect(message("Alex Jones SSN 524-61-3378 student ID 482913"))
    for f in result.findings:
        assert "3378" not in str(f.public()) and "482913" not in str(f.public())
        assert f.sample is None or ("482913" not in f.sample and "524-61" not in f.sample)


def test_engines_agree_on_the_same_text():
    text = ("Student ID 600123; 482913 Alex Jones DOB 04/12/2010; SSN 524-61-3378; "
            "Order #748392; idiot; Sam Lee IEP; 555-867-5309") * 3
    results = {e: sorted((f.detector, f.count, f.distinct)
                         for f in make_inspector(engine=e).scan_part(Part(text, "body")))
               for e in ENGINES_HERE}
    assert len({tuple(r) for r in results.values()}) == 1


def test_pickle_round_trip_and_threads(inspector):
    raw = message("Alex Jones SSN 524-61-3378, GPA 3.2", subject="Sam Lee IEP")
    expected = inspector.inspect(raw)
    clone = pickle.loads(pickle.dumps(inspector))
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
        inspector, text, kind, ctype):
    """No number, date, name or lexicon term: the detectors get nothing (scan_part's
    shortcut), and given the same empty hit lists they would report nothing either."""
    from gateway.detectors import PART_DETECTORS, lexicon
    from gateway.detectors.analysis import analyse, prepare
    part = Part(text, f"{kind} here", kind, ctype, "grades.csv" if kind == "attachment" else None)
    assert inspector.analyse(part) is None
    assert inspector.scan_part(part) == []
    a = analyse(part, prepare(text), [], [], inspector.directory)
    assert [f for d in PART_DETECTORS if (f := d.scan(a))] + lexicon.scan_all(a) == []


@pytest.mark.skipif(hyperscan is None, reason="needs the Hyperscan wheel")
def test_hyperscan_prefilter_changes_no_hit_and_skips_the_full_scan(monkeypatch):
    """The scan without start-of-match tracking only decides whether the full scan runs: the
    hits are the same with and without it, and a text with no match never gets the full scan."""
    from gateway.detectors import patternset as engine
    ins = make_inspector(engine="hyperscan")
    patterns = ins.patterns
    assert patterns._hs_any is not None
    texts = [b"", b"a newsletter with no numbers at all", b"Student ID 600123 DOB 04/12/2010",
             b"SSN 524-61-3378 " * 50, b"call 555-867-5309, room 12, 9:30 on 2024-05-06",
             b"x" * 5000 + b" 482913"]
    with_prefilter = [patterns.scan(t) for t in texts]
    full_scans = []
    real_scan = engine._hs_scan
    monkeypatch.setattr(engine, "_hs_scan", lambda *a: full_scans.append(a[2]) or real_scan(*a))
    patterns.scan(b"a newsletter with no numbers at all")
    assert full_scans == []
    patterns.scan(b"Student ID 600123")
    assert full_scans == [b"Student ID 600123"]
    monkeypatch.setattr(patterns, "_hs_any", None)
    assert [patterns.scan(t) for t in texts] == with_prefilter
    assert any(with_prefilter) and not all(with_prefilter)
