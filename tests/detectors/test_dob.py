"""Dates of birth: a date next to a birth keyword, with an identified student nearby."""

from __future__ import annotations

import pytest

from tests.factories import findings_in


@pytest.mark.parametrize("text", [
    "Alex Jones, DOB 04/12/2010", "Alex Jones was born March 4, 2009.",
    "Name: Alex Jones ; Birthday: 04/12/2010", "Alex Jones, date of birth 2010-04-12",
    "Alex Jones, birth date 04/12/2010",
])
def test_birth_dates_of_a_student(engine_inspector, text):
    assert "dob" in findings_in(engine_inspector, text)


@pytest.mark.parametrize("text", [
    "Alex Jones's birthday party is on 05/20/2024 at the park.",
    "We'll celebrate Alex Jones's birthday with cupcakes on 05/24/2024.",
    "Happy birthday, Alex Jones! See you on 05/24/2024.",
])
def test_a_birthday_celebration_is_not_a_date_of_birth(engine_inspector, text):
    assert "dob" not in findings_in(engine_inspector, text)
