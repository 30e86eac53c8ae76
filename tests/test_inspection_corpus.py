"""Accuracy over the labelled corpus: every detector at precision 1.0 and recall 1.0, on every
available engine (Hyperscan, RE2, Python re must agree)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from gateway.detectors.patternset import ENGINES, hyperscan, re2
from gateway.model import OTHER_DETECTORS, STUDENT_RECORD_DETECTORS
from tests.inspection_helpers import detectors, make_inspector

_spec = importlib.util.spec_from_file_location(
    "inspection_corpus", Path(__file__).parent / "corpus" / "inspection_corpus.py")
corpus = importlib.util.module_from_spec(_spec)
sys.modules["inspection_corpus"] = corpus
_spec.loader.exec_module(corpus)

AVAILABLE = [e for e in ENGINES
             if e == "re" or (e == "hyperscan" and hyperscan) or (e == "re2" and re2)]


def score(inspector) -> dict[str, tuple[int, int, int]]:
    """detector → (true positives, false positives, false negatives), counted per case."""
    table: dict[str, list[int]] = {}
    for case in corpus.CASES:
        got = detectors(inspector.inspect(case.build()))
        for det in got | case.expected:
            row = table.setdefault(det, [0, 0, 0])
            row[0 if det in got and det in case.expected else 1 if det in got else 2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in table.items()}


@pytest.fixture(scope="module", params=AVAILABLE)
def inspector(request):
    return make_inspector(engine=request.param)


def test_corpus_covers_every_detector():
    labelled = set().union(*(c.expected for c in corpus.CASES))
    assert set(STUDENT_RECORD_DETECTORS) | set(OTHER_DETECTORS) <= labelled
    assert sum(not c.positive for c in corpus.CASES) >= 10


@pytest.mark.parametrize("case", corpus.CASES, ids=lambda c: c.id)
def test_case_fires_exactly_its_detectors(inspector, case):
    assert detectors(inspector.inspect(case.build())) == case.expected


def test_precision_and_recall_are_perfect(inspector):
    for detector, (tp, fp, fn) in score(inspector).items():
        assert (detector, fp, fn) == (detector, 0, 0)
        assert tp > 0
