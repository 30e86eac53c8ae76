"""Known student numbers: whole numbers only, never order numbers or longer digit runs."""

from __future__ import annotations

from tests.factories import findings_in


def test_known_numbers_ignore_order_words_and_longer_numbers(engine_inspector):
    assert "student_number" in findings_in(engine_inspector, "Ticket for 482913 (student)")
    for text in ("Order #482913", "call 555-482913", "4829130", "A482913", "482913.55"):
        assert "student_number" not in findings_in(engine_inspector, text), text
