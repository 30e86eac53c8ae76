"""The pattern engines (Hyperscan, RE2, Python re) agree hit for hit; Hyperscan's prefilter
changes no hit and spares the full scan."""

from __future__ import annotations

import pytest

from gateway.detectors import patternset as engine
from gateway.detectors.patternset import hyperscan
from gateway.model import Part
from tests.factories import AVAILABLE_ENGINES, make_inspector


def test_engines_agree_on_the_same_text():
    text = ("Student ID 600123; 482913 Alex Jones DOB 04/12/2010; SSN 524-61-3378; "
            "Order #748392; idiot; Sam Lee IEP; 555-867-5309") * 3
    results = {e: sorted((f.detector, f.count, f.distinct)
                         for f in make_inspector(engine=e).scan_part(Part(text, "body")))
               for e in AVAILABLE_ENGINES}
    assert len({tuple(r) for r in results.values()}) == 1


@pytest.mark.skipif(hyperscan is None, reason="needs the Hyperscan wheel")
def test_hyperscan_prefilter_changes_no_hit_and_skips_the_full_scan(monkeypatch):
    """The scan without start-of-match tracking only decides whether the full scan runs: the
    hits are the same with and without it, and a text with no match never gets the full scan."""
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


@pytest.mark.skipif(hyperscan is None, reason="needs the Hyperscan wheel")
def test_hyperscan_long_text_goes_straight_to_the_full_scan(monkeypatch):
    """Past PREFILTER_MAX the prefilter is skipped (a long text nearly always matches
    something); the hits are the ones the prefiltered path finds, a match or none."""
    patterns = make_inspector(engine="hyperscan").patterns
    filler = b"a newsletter line with no numbers at all\n" * (engine.PREFILTER_MAX // 40)
    texts = [filler, filler + b" SSN 524-61-3378", b"Student ID 600123 " + filler]
    assert all(len(t) > engine.PREFILTER_MAX for t in texts)
    prefiltered = []
    real_matches = engine._hs_matches
    monkeypatch.setattr(engine, "_hs_matches", lambda *a: prefiltered.append(a[2]) or
                        real_matches(*a))
    long_hits = [patterns.scan(t) for t in texts]
    assert prefiltered == []
    monkeypatch.setattr(engine, "PREFILTER_MAX", 10 * engine.PREFILTER_MAX)
    assert [patterns.scan(t) for t in texts] == long_hits
    assert len(prefiltered) == len(texts)
    assert long_hits[0] == [] and long_hits[1] and long_hits[2]
