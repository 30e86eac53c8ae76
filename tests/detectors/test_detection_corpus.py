"""The labelled detection corpus by class (tests/corpus/detection_corpus.py): every leak
found, every look-alike and every ordinary school message silent, on every engine, with the
shipped policy's term lists. `bench/detection.py` prints the same as a table."""

from __future__ import annotations

import pytest

from bench.detection import judge
from gateway.inspect import Inspector, build_inspector
from tests.corpus import detection_corpus as corpus
from tests.factories import AVAILABLE_ENGINES, FakeDirectory, make_settings

CASES = [(cls.name, case) for cls in corpus.all_classes() for case in cls.cases]


@pytest.fixture(scope="module", params=AVAILABLE_ENGINES)
def shipped_inspector(request: pytest.FixtureRequest) -> Inspector:
    return build_inspector(make_settings(), FakeDirectory(), corpus.shipped_lexicons(),
                           engine=request.param)


def test_every_class_of_the_issue_is_there():
    kinds = {cls.name: cls.kind for cls in corpus.all_classes()}
    assert sum(k == corpus.LEAK for k in kinds.values()) >= 8
    assert sum(k == corpus.FALSE_ALARM for k in kinds.values()) >= 4
    controls = [c for cls in corpus.all_classes() if cls.kind == corpus.CONTROL
                for c in cls.cases]
    assert len(controls) >= 40


@pytest.mark.parametrize(("cls", "case"), CASES, ids=[f"{n}/{c.id}" for n, c in CASES])
def test_case(shipped_inspector, cls, case):
    verdicts = judge(shipped_inspector, case)
    assert {d: v for d, v in verdicts.items() if v != "tp"} == {}
    assert set(verdicts) == set(case.expected)
