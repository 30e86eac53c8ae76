"""The limits every extractor shares (depth, part count, extracted text, time budget), each
failing closed as `uninspectable`; and text normalised before the detectors see it."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from gateway.config import InspectionSettings
from gateway.detectors.patternset import ENGINES
from gateway.extract.base import Budget, Context, Sink
from gateway.inspect import Inspector
from tests.factories import (
    STUDENTS,
    attached,
    detectors,
    make_inspector,
    message,
    uninspectable_reasons,
    zip_of,
)


def test_depth_limit_on_nested_archives():
    data = zip_of([("list.csv", b"SSN: 524-61-3378")])
    for level in range(6):
        data = zip_of([(f"z{level}.zip", data)])
    result = make_inspector(max_depth=3).inspect(attached("nest.zip", data))
    assert "nesting depth limit" in uninspectable_reasons(result) and "ssn" not in detectors(result)


def test_deep_mime_nesting_is_cut_not_crashed():
    part = EmailMessage()
    part.set_content("SSN 524-61-3378")
    for _ in range(60):
        outer = EmailMessage()
        outer.make_mixed()
        outer.attach(part)
        part = outer
    result = make_inspector(max_depth=10).inspect(part.as_bytes())
    assert "nesting depth limit" in uninspectable_reasons(result) and not result.complete


def test_part_count_limit():
    raw = message("x", attachments=[(f"f{i}.txt", b"hello", "text/plain") for i in range(12)])
    result = make_inspector(max_parts=5).inspect(raw)
    assert uninspectable_reasons(result) == {"part count limit"}


def test_extracted_text_limit():
    rows = "\n".join(f"row {i} text" for i in range(5000)).encode()
    result = make_inspector(max_extracted_bytes=10_000).inspect(attached("a.txt", rows))
    assert uninspectable_reasons(result) == {"extracted text limit"}


def test_time_budget_is_cooperative_and_fails_closed():
    ticks = iter(range(10_000))
    inspector = Inspector(InspectionSettings(time_budget=3.0), r"\b\d{6}\b", STUDENTS, {},
                          clock=lambda: float(next(ticks)))
    raw = message("x", attachments=[(f"f{i}.txt", b"hello", "text/plain") for i in range(10)])
    result = inspector.inspect(raw)
    assert uninspectable_reasons(result) == {"time budget exceeded"} and not result.complete


@pytest.mark.parametrize("engine", ENGINES)
def test_full_width_digits_read_as_digits(engine):
    body = "SSN: \uff15\uff13\uff16-\uff12\uff12-\uff18\uff18\uff14\uff11"
    assert "ssn" in detectors(make_inspector(engine).inspect(message(body)))


@pytest.mark.parametrize(("text", "seen"), [
    ("524\u200b-61-\u200b3378", "524-61-3378"),  # zero-width space
    ("524\u00ad61\u00ad3378", "524613378"),  # soft hyphens
    ("524\u201161\u20113378", "524-61-3378"),  # non-breaking hyphens
    ("524\u201361\u20133378", "524-61-3378"),  # en dashes
    ("524\u221261\u20143378", "524-61-3378"),  # minus sign, em dash
    ("48\u20602913\ufeff", "482913"),  # word joiner, byte-order mark
    ("５２４-６１-３３７８", "524-61-3378"),  # full-width digits
])
def test_text_is_read_as_a_reader_sees_it(text, seen):
    ctx = Context(Budget(InspectionSettings()), Sink())
    ctx.add_text(f"SSN {text}", "body")
    assert ctx.sink.parts[0].text == f"SSN {seen}"
