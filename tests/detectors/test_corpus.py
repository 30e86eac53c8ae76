"""Accuracy over the labelled corpus: every detector at precision 1.0 and recall 1.0, on every
available engine (Hyperscan, RE2, Python re must agree)."""

from __future__ import annotations

import pytest

from gateway.inspect import Inspector
from gateway.model import OTHER_DETECTORS, STUDENT_RECORD_DETECTORS
from tests.corpus import inspection_corpus as corpus
from tests.factories import detectors


def score(inspector: Inspector) -> dict[str, tuple[int, int, int]]:
    """detector → (true positives, false positives, false negatives), counted per case."""
    table: dict[str, list[int]] = {}
    for case in corpus.CASES:
        got = detectors(inspector.inspect(case.build()))
        for det in got | case.expected:
            row = table.setdefault(det, [0, 0, 0])
            row[0 if det in got and det in case.expected else 1 if det in got else 2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in table.items()}


def test_corpus_covers_every_detector():
    labelled = set().union(*(c.expected for c in corpus.CASES))
    assert set(STUDENT_RECORD_DETECTORS) | set(OTHER_DETECTORS) <= labelled
    assert sum(not c.positive for c in corpus.CASES) >= 10


@pytest.mark.parametrize("case", corpus.CASES, ids=lambda c: c.id)
def test_case_fires_exactly_its_detectors(engine_inspector, case):
    assert detectors(engine_inspector.inspect(case.build())) == case.expected


def test_precision_and_recall_are_perfect(engine_inspector):
    for detector, (tp, fp, fn) in score(engine_inspector).items():
        assert (detector, fp, fn) == (detector, 0, 0)
        assert tp > 0
