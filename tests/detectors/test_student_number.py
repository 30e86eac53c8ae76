"""Known student numbers: whole numbers only, never order numbers or longer digit runs."""

from __future__ import annotations

from tests.factories import findings_in


def test_known_numbers_ignore_order_words_and_longer_numbers(engine_inspector):
    assert "student_number" in findings_in(engine_inspector, "Ticket for 482913 (student)")
    for text in ("Order #482913", "call 555-482913", "4829130", "A482913", "482913.55"):
        assert "student_number" not in findings_in(engine_inspector, text), text


def test_roster_numbers_written_in_groups_are_found(engine_inspector):
    for text in ("Please update the file for 482-913 today.", "SID 482 913",
                 "Records for 482.913 are in.", "Alex (482-913) and Sam (517 204)"):
        assert "student_number" in findings_in(engine_inspector, text), text


def test_grouped_spellings_inside_longer_numbers_or_other_labels_stay_silent(engine_inspector):
    for text in ("Call 555-482-9130 after 3.", "Call 555 482 913 after 3.",
                 "The grant is 1 482 913 euros.", "482 913 7 is the code",
                 "Lot 482-913 of the glue sticks was recalled.", "Dated 48.29.13 in the ledger",
                 "4829-13", "48-2913"):
        assert "student_number" not in findings_in(engine_inspector, text), text
