"""SSNs: found near their keyword, by every engine."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from tests.factories import detectors, findings_in, message


@pytest.mark.parametrize(("text", "hit"), [
    ("SSN: 524-61-3378", True),
    ("SSN" + " x" * 140 + " 524-61-3378", True),  # keyword 280 characters away
    ("SSN" + " x" * 200 + " 524-61-3378", False),  # 400 away
    ("524-61-3378 is her social security number", True),
    ("SSN 524-61 3378", True),  # mixed separators: what a reader sees as an SSN
    ("SS# 524613378", True),
    ("SSN" + " x" * 60 + " 524613378", False),  # undelimited digits need the keyword closer
    ("Part 524-61-3378 shipped", False),
])
def test_ssn_keyword_rules(engine_inspector, text, hit):
    assert ("ssn" in findings_in(engine_inspector, text)) is hit


@pytest.mark.parametrize("text", [
    "his social is 524-61-3378", "Social # 524-61-3378", "S S N: 524-61-3378",
    "S.S.N. 524 61 3378", "SS No. 524-61-3378", "ss number 524613378",
    "Taxpayer identification number 524-61-3378", "Su número de seguro social es 524-61-3378",
    "SSN 524.61-3378", "SSN 524 61-3378",
])
def test_ssn_keyword_variants_and_mixed_separators(engine_inspector, text):
    assert "ssn" in findings_in(engine_inspector, text)


@pytest.mark.parametrize("text", [
    "Your employee ID is 524613378. HR never asks for your SSN.",
    "Invoice 524613378 attached. Never send your SSN by email.",
    "SSID: 524613378",  # a state student id is not an SSN keyword
    "State student ID 524613378 (not the SSN).",
    "Order 524-61-3378 shipped; we never need your social security number.",
    "Our social is on Friday; tickets 524-61-3378.",  # "social" alone is an event
])
def test_a_numbers_own_label_wins_over_an_ssn_keyword_further_away(engine_inspector, text):
    assert "ssn" not in findings_in(engine_inspector, text)


def test_the_keyword_between_label_and_number_keeps_it_an_ssn(engine_inspector):
    assert "ssn" in findings_in(engine_inspector, "Employee SSN: 524-61-3378")


@pytest.mark.parametrize(("cells", "hit"), [
    ("SSN 524 ; 61 ; 3378", True),
    ("SSN area: 524 ; SSN group: 61 ; SSN serial: 3378", True),
    ("SSN 524 ;  ; 61 ;  ; 3378", True),  # HTML cells: empty ones between
    ("Scores 524 ; 61 ; 3378", False),  # no keyword
    ("SSN 000 ; 61 ; 3378", False),  # not an issuable area
])
def test_ssn_split_over_table_cells(engine_inspector, cells, hit):
    assert ("ssn" in findings_in(engine_inspector, cells)) is hit


def test_a_subject_naming_an_ssn_keys_the_body(engine_inspector):
    assert "ssn" in detectors(engine_inspector.inspect(
        message("Here it is: 524-61-3378", subject="SSN for the new aide")))
    assert "ssn" not in detectors(engine_inspector.inspect(
        message("Here it is: 524-61-3378", subject="Order for the new aide")))
    # Only near the start of the body, where a heading reaches.
    assert "ssn" not in detectors(engine_inspector.inspect(
        message("x " * 200 + "524-61-3378", subject="SSN")))


def test_a_forwarded_messages_subject_keys_its_own_body(engine_inspector):
    inner = EmailMessage()
    inner["Subject"] = "SSN for the aide"
    inner.set_content("Here: 524-61-3378")
    outer = EmailMessage()
    outer["Subject"] = "Fwd: aide"
    outer.set_content("See below: 524-61-3379")  # the outer body has no SSN keyword
    outer.add_attachment(inner)
    found = [f for f in engine_inspector.inspect(outer.as_bytes()).findings if f.detector == "ssn"]
    assert [f.location for f in found] == ["forwarded message, body"]
